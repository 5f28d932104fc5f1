import type { MqttClient } from 'mqtt';
import type { OfflineQueue } from '../queue/offline-queue.js';
import { fullJitterDelay, type BackoffPolicy } from './backoff.js';
import { refusalResponse } from './reason-codes.js';

export interface DeliveryStats {
  published: number;
  refused: number;
  throttled: number;
}

export interface DeliveryDeps {
  readonly queue: OfflineQueue;
  /** The connected client, or null while offline. */
  readonly client: () => MqttClient | null;
  /** Told about a quota or rate refusal, so reconnects slow down too. */
  readonly slowDown: () => void;
  readonly backoff: BackoffPolicy;
  readonly random?: () => number;
  readonly onRefused: (topic: string, reasonCode: number) => void;
  readonly onError: (message: string) => void;
}

/**
 * Delivers the offline queue, oldest first, one message in flight at a time so order holds even
 * when the gateway refuses one: a message leaves the queue only once the gateway has answered it.
 * A quota or rate refusal keeps it and pauses delivery for a jittered delay; any other refusal
 * drops it (counted), and a topic refused as not authorized is refused locally from then on.
 */
export class QueueDelivery {
  readonly stats: DeliveryStats = { published: 0, refused: 0, throttled: 0 };
  readonly #deps: DeliveryDeps;
  readonly #forbidden = new Set<string>();
  #running = false;
  #pausedUntil = 0;

  constructor(deps: DeliveryDeps) {
    this.#deps = deps;
  }

  get forbiddenTopics(): readonly string[] {
    return [...this.#forbidden];
  }

  isForbidden(topic: string): boolean {
    return this.#forbidden.has(topic);
  }

  /** Delivers until the queue is empty, the connection is gone or the gateway asks to slow down. */
  async flush(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      await this.#deliver();
    } catch (error) {
      this.#deps.onError(`the queue could not be delivered: ${(error as Error).message}`);
    } finally {
      this.#running = false;
    }
  }

  async #deliver(): Promise<void> {
    const { queue } = this.#deps;
    for (;;) {
      const client = this.#deps.client();
      if (client === null || Date.now() < this.#pausedUntil) return;
      const [next] = queue.peek(1);
      if (next === undefined) return;
      if (this.#forbidden.has(next.topic)) {
        this.stats.refused += 1;
        await queue.acknowledge(next.seq);
        continue;
      }
      const code = await publishAcknowledged(client, next.topic, next.payload);
      if (code === 'closed') return;
      if (code !== 0 && refusalResponse(code) === 'slow-down') {
        this.#pause();
        return;
      }
      if (code === 0) this.stats.published += 1;
      else {
        this.stats.refused += 1;
        if (code === 0x87) this.#forbidden.add(next.topic);
        this.#deps.onRefused(next.topic, code);
      }
      await queue.acknowledge(next.seq);
    }
  }

  #pause(): void {
    this.stats.throttled += 1;
    this.#deps.slowDown();
    const delay = Math.max(this.#deps.backoff.initialMs, fullJitterDelay(this.#deps.backoff, 3, this.#deps.random));
    this.#pausedUntil = Date.now() + delay;
    // The timer ends the pause itself: a timer may fire a millisecond before the clock says so.
    setTimeout(() => {
      this.#pausedUntil = 0;
      void this.flush();
    }, delay).unref?.();
  }
}

/** 0 when acknowledged, the reason code when refused, 'closed' when the connection went away first (the message stays queued). */
function publishAcknowledged(client: MqttClient, topic: string, payload: Buffer): Promise<number | 'closed'> {
  return new Promise((resolve) => {
    const onClose = (): void => resolve('closed');
    client.once('close', onClose);
    client.publish(topic, payload, { qos: 1 }, (error?: Error & { code?: unknown }) => {
      client.removeListener('close', onClose);
      if (error === undefined || error === null) resolve(0);
      else resolve(typeof error.code === 'number' ? error.code : 'closed');
    });
  });
}
