import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { ReasonCode } from '@fleetward/protocol';
import { credentialFiles } from '../identity/device-credentials.js';
import { clientTlsContext, mqttTlsOptions, secureUrl } from '../session/tls-options.js';

/** Where a device's credentials are, as an attacker who copied them off the device has them. */
export interface StolenCredentials {
  readonly thing: string;
  readonly stateDir: string;
  readonly caFile: string;
  readonly mqttUrl: string;
}

/**
 * A session with a device's own key and certificate, opened outside its agent — what an attacker
 * who copied them does. It must use the device's client id (no policy allows another), so it takes
 * the agent's session over; the agent comes back on its own. With `localAddress` (127.0.0.x) it
 * comes from another address of this machine, as a clone elsewhere would. A connect refused for
 * the device's connect rate is tried again for up to `patienceMs`: the rate limit paces the
 * attacker, it is not the attack under test.
 */
export async function stolenSession(stolen: StolenCredentials, options: { readonly localAddress?: string; readonly patienceMs?: number } = {}): Promise<MqttClient> {
  const files = credentialFiles(stolen.stateDir);
  const identity = { key: { pem: await readFile(files.key, 'utf8') }, certPem: await readFile(files.cert, 'utf8'), caPem: await readFile(stolen.caFile, 'utf8') };
  // A bound IPv4 source needs an IPv4 destination, also when the gateway is named `localhost`.
  const source = options.localAddress === undefined ? {} : { localAddress: options.localAddress, family: 4 };
  const until = Date.now() + (options.patienceMs ?? 20_000);
  const context = clientTlsContext(identity);
  for (;;) {
    try {
      return await mqtt.connectAsync(secureUrl(stolen.mqttUrl), Object.assign(mqttTlsOptions(context, stolen.thing, { clean: true }), source));
    } catch (error) {
      if ((error as { code?: unknown }).code !== ReasonCode.ConnectionRateExceeded || Date.now() > until) throw error;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

/** Resolves when the session is closed (by the gateway, or by a takeover), or after `ms`. */
export function closedOrAfter(client: MqttClient, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Fires `count` QoS 1 publishes on the device's own topic without waiting; true when the gateway
 * refused some or closed the connection. Waits at most 10 s, and not past the close: publishes
 * still in flight then are never answered.
 */
export async function flood(client: MqttClient, thing: string, count: number): Promise<boolean> {
  let refused = false;
  const closed = closedOrAfter(client, 10_000).then(() => {
    refused ||= !client.connected;
  });
  const sent = Array.from(
    { length: count },
    (_, i) =>
      new Promise<void>((resolve) => {
        client.publish(`things/${thing}/telemetry/env`, JSON.stringify({ celsius: 20, seq: i, sentAt: Date.now() }), { qos: 1 }, (error) => {
          if (error) refused = true;
          resolve();
        });
      }),
  );
  await Promise.race([Promise.all(sent), closed]);
  return refused;
}

/**
 * The source address a clone of device `index` connects from: another loopback address, spread
 * over 127.0.0.2-254 so no one address meets the gateway's per-source handshake limit. Null when
 * the gateway is not on this machine's loopback: a second source address there needs a second
 * interface, and the simulator sends nothing anywhere but loopback of its own accord.
 */
export function cloneSource(mqttUrl: string): ((index: number) => string) | null {
  const host = new URL(mqttUrl.replace(/^(mqtts|wss):/, 'https:')).hostname;
  const loopback = host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.'));
  return loopback ? (index) => `127.0.0.${2 + (index % 253)}` : null;
}
