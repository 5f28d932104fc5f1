import type { MqttClient } from 'mqtt';
import { FleetwardError, isErrorCode, parseSealingKey, Topics, type RequestRejected, type SealingRecipient } from '@fleetward/protocol';
import { subscribeOne, withTimeout } from '../session/mqtt-requests.js';

/**
 * The backend's sealing key, asked of the gateway (`$fw/things/{thing}/sealing-key/get`) when the
 * device first seals something on a connection: after a rotation the next connection gets the new
 * key, and what was sealed to the old one still opens on the server.
 */
export class BackendSealingKey {
  readonly #thing: string;
  #current: SealingRecipient | null = null;
  #waiting: { resolve(key: SealingRecipient): void; reject(error: Error): void } | null = null;
  #asked: MqttClient | null = null;

  constructor(thing: string) {
    this.#thing = thing;
  }

  /** The key last received, if any (sealing works offline with it). */
  get current(): SealingRecipient | null {
    return this.#current;
  }

  /** Asks on this connection once; later calls on the same connection answer from memory. */
  async fetch(client: MqttClient | null, timeoutMs = 10_000): Promise<SealingRecipient> {
    if (client === null || client === this.#asked) {
      if (this.#current !== null) return this.#current;
      if (client === null) throw new FleetwardError('FW_ERR_NOT_READY', 'the device has no sealing key yet and is offline');
    }
    const answer = new Promise<SealingRecipient>((resolve, reject) => (this.#waiting = { resolve, reject }));
    for (const filter of [Topics.sealingKey(this.#thing), Topics.sealingKeyRejected(this.#thing)]) await subscribeOne(client, filter);
    await client.publishAsync(Topics.sealingKeyRequest(this.#thing), '{}', { qos: 1 });
    const key = await withTimeout(answer, timeoutMs, 'the sealing key did not arrive in time');
    this.#asked = client;
    return key;
  }

  /** Handles a message on the answer topics; true when it was one. */
  receive(topic: string, payload: Buffer): boolean {
    if (topic !== Topics.sealingKey(this.#thing) && topic !== Topics.sealingKeyRejected(this.#thing)) return false;
    const waiting = this.#waiting;
    this.#waiting = null;
    try {
      const value = JSON.parse(payload.toString()) as unknown;
      if (topic === Topics.sealingKeyRejected(this.#thing)) {
        const rejected = value as RequestRejected;
        throw new FleetwardError(isErrorCode(rejected.code) ? rejected.code : 'FW_ERR_FORBIDDEN', `the sealing key was refused: ${rejected.message}`);
      }
      this.#current = parseSealingKey(value);
      waiting?.resolve(this.#current);
    } catch (error) {
      waiting?.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return true;
  }
}
