import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { createLogger } from '../../src/observability/logger.js';
import { buildNode, openHome, type FleetwardNode } from '../../src/node.js';
import { deviceWithCertificate, type DeviceCredentials } from '../helpers/devices.js';
import { testEnvironment, TestClock } from '../helpers/environment.js';
import { backdatedExternalCa } from '../helpers/external-ca.js';
import { LogCapture } from '../helpers/test-node.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const admin = { name: 'operator:admin' };

/** One connection attempt with MQTT.js over mutual TLS, offering `ticket` to resume with. */
interface Attempt {
  /** Whether the TLS handshake resumed the session (null: no handshake completed). */
  readonly resumed: boolean | null;
  /** The CONNACK reason code of a refusal, or the socket error; null when connected. */
  readonly refused: number | string | null;
  /** The first ticket the gateway sent on this connection, if any. */
  readonly ticket: Buffer | null;
}

async function attempt(mqttUrl: string, caPem: string, device: DeviceCredentials, ticket: Buffer | null = null): Promise<Attempt> {
  const client: MqttClient = mqtt.connect(mqttUrl, { ca: caPem, key: device.keyPem, cert: device.certPem, clientId: device.name, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5_000, rejectUnauthorized: true, ...(ticket !== null && { session: ticket }) } as mqtt.IClientOptions);
  const socket = client.stream as TLSSocket;
  let received: Buffer | null = null;
  let resumed: boolean | null = null;
  socket.on('session', (t: Buffer) => (received ??= t));
  socket.once('secureConnect', () => (resumed = socket.isSessionReused()));
  let refused: number | string | null = null;
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('closed')));
    });
    // TLS 1.3 tickets follow the handshake: give them a moment to arrive.
    for (let i = 0; i < 20 && received === null && ticket === null; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  } catch (error) {
    refused = (error as { code?: number | string }).code ?? (error as Error).message;
  }
  await client.endAsync(true);
  return { resumed, refused, ticket: received };
}

interface Running {
  readonly node: FleetwardNode;
  readonly mqttUrl: string;
  readonly caPem: string;
}

/** A data folder, and a node on it that can be stopped and started again (same keys, same registry). */
async function dataFolder(env: Readonly<Record<string, string>> = {}, clock = new TestClock(Date.now())) {
  const environment = await testEnvironment('sqlite', { FLEETWARD_LOG_LEVEL: 'warn', ...env });
  let running: Running | null = null;
  const stop = async () => {
    await running?.node.close();
    running = null;
  };
  cleanups.push(() => environment.cleanup(), stop);
  let created = false;
  return {
    clock,
    async start(): Promise<Running> {
      const { context } = await openHome(environment.config(), { create: !created, logger: createLogger('warn', new LogCapture()), clock });
      created = true;
      const node = await buildNode(context);
      const { mqttUrl } = await node.listen();
      running = { node, mqttUrl, caPem: node.hierarchy.chainPem };
      return running;
    },
    stop,
  };
}

describe('TLS session resumption on the device gateway (rule 3)', () => {
  it('a device resumes its session after the node restarts; admission still asks the registry (a revoked certificate is refused)', async () => {
    const folder = await dataFolder();
    let running = await folder.start();
    const device = await deviceWithCertificate(running.node.context, 'resume-1');
    const first = await attempt(running.mqttUrl, running.caPem, device);
    expect(first).toMatchObject({ resumed: false, refused: null });
    expect(first.ticket).not.toBeNull();

    await folder.stop();
    running = await folder.start();
    const again = await attempt(running.mqttUrl, running.caPem, device, first.ticket);
    expect(again).toMatchObject({ resumed: true, refused: null });

    await running.node.context.identity.certificates.revoke(device.serial, 'keyCompromise', admin);
    const revoked = await attempt(running.mqttUrl, running.caPem, device, first.ticket);
    expect(revoked).toMatchObject({ resumed: true, refused: 0x87 });
  });

  it('a ticket does not outlive the certificate: a resumed session of an expired certificate is refused', async () => {
    const folder = await dataFolder();
    const running = await folder.start();
    const device = await deviceWithCertificate(running.node.context, 'resume-2');
    const first = await attempt(running.mqttUrl, running.caPem, device);
    expect(first.ticket).not.toBeNull();
    // The gateway's clock passes the certificate's end (the handshake itself is checked on the real clock).
    folder.clock.advance(4 * 365 * 86_400_000);
    expect(await attempt(running.mqttUrl, running.caPem, device, first.ticket)).toMatchObject({ resumed: true, refused: 0x87 });
  });

  it('tickets issued before the trusted CAs change do not resume: the next handshake is a full one', async () => {
    const folder = await dataFolder();
    const running = await folder.start();
    const device = await deviceWithCertificate(running.node.context, 'resume-3');
    const first = await attempt(running.mqttUrl, running.caPem, device);
    expect(await attempt(running.mqttUrl, running.caPem, device, first.ticket)).toMatchObject({ resumed: true, refused: null });

    const other = await backdatedExternalCa('Another Vendor CA');
    running.node.gateway.setTrust(running.node.server, `${running.caPem}${other.pem}`);
    const after = await attempt(running.mqttUrl, running.caPem, device, first.ticket);
    expect(after).toMatchObject({ resumed: false, refused: null });
    expect(after.ticket).not.toBeNull();
    expect(await attempt(running.mqttUrl, running.caPem, device, after.ticket)).toMatchObject({ resumed: true, refused: null });
  });

  it('FLEETWARD_TLS_SESSION_RESUMPTION_HOURS=0 turns resumption off: every handshake is a full one', async () => {
    const folder = await dataFolder({ FLEETWARD_TLS_SESSION_RESUMPTION_HOURS: '0' });
    const running = await folder.start();
    const device = await deviceWithCertificate(running.node.context, 'resume-4');
    const first = await attempt(running.mqttUrl, running.caPem, device);
    expect(first.refused).toBeNull();
    // TLS 1.3 may still send a ticket (stateful, with no session cache behind it): it never resumes.
    expect(first.ticket).not.toBeNull();
    expect(await attempt(running.mqttUrl, running.caPem, device, first.ticket)).toMatchObject({ resumed: false, refused: null });
  });
});
