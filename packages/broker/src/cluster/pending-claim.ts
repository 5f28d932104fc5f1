import { Router } from '../engine/router.js';
import type { Delivery, Message, Subscription } from '../message.js';
import { SubscriptionIndex } from '../topic/subscription-index.js';
import type { Claim, ClaimResult, Release } from './cluster-transport.js';

interface Recorded {
  readonly node: string;
  readonly seq: number;
  readonly message: Message;
}

/** A later claim that took the session from us before we had it: we pass on what we recorded. */
export interface Superseded {
  readonly claim: Claim;
  readonly lastSeq: number;
}

/**
 * A session this node is taking over from another. Until it is installed here, nobody routes to it:
 * the previous owner stopped at our claim's place on the bus. So every message published from then
 * on is recorded (this node's own from the moment the claim is sent, the others' from the moment it
 * is heard back) and matched against the session's subscriptions once they are known. The previous
 * owner's release says up to which of its own messages it delivered itself.
 */
export class PendingClaim {
  readonly clientId: string;
  readonly cleanStart: boolean;
  readonly token: string;
  result: ClaimResult | undefined;
  superseded: Superseded | undefined;
  #entries: Recorded[] = [];
  #head = 0;
  #hearingOthers = false;
  #release: Release | undefined;
  #wake: (() => void) | undefined;
  readonly #limit: number;
  readonly #onDrop: () => void;

  constructor(clientId: string, cleanStart: boolean, token: string, limit: number, onDrop: () => void) {
    this.clientId = clientId;
    this.cleanStart = cleanStart;
    this.token = token;
    this.#limit = limit;
    this.#onDrop = onDrop;
  }

  /** A message this node published. */
  recordOwn(node: string, seq: number, message: Message): void {
    if (this.superseded === undefined) this.#record({ node, seq, message });
  }

  /** A message another node published, heard after our claim. */
  recordOther(node: string, seq: number, message: Message): void {
    if (this.#hearingOthers && this.superseded === undefined) this.#record({ node, seq, message });
  }

  /** Our claim came back on the bus: from here on, the others' messages are ours to deliver. */
  heard(): void {
    this.#hearingOthers = true;
  }

  /** Waits for the previous owner's release; false when it did not come in time. */
  waitForRelease(timeoutMs: number): Promise<boolean> {
    if (this.#release !== undefined) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve(false);
      }, timeoutMs);
      timer.unref();
      this.#wake = () => {
        clearTimeout(timer);
        resolve(this.#release !== undefined);
      };
    });
  }

  released(release: Release): void {
    if (release.token !== this.token) return;
    this.#release = release;
    this.#wake?.();
  }

  /** The previous owner left the cluster: no release will come. */
  ownerGone(): void {
    this.#wake?.();
  }

  supersede(claim: Claim, lastSeq: number): void {
    this.superseded ??= { claim, lastSeq };
  }

  /**
   * The recorded messages for the session, as deliveries on its plain subscriptions (shared ones
   * were routed by node, and this node held none of this session's shares meanwhile), less those
   * the previous owner delivered itself.
   */
  deliveries(subscriptions: readonly Subscription[]): Delivery[] {
    const index = new SubscriptionIndex<Subscription>();
    for (const subscription of subscriptions) if (subscription.shareGroup === undefined) index.add(subscription.pattern, this.clientId, subscription);
    const deliveries: Delivery[] = [];
    if (index.size === 0) return deliveries;
    const router = new Router(index, () => true, (_clientId, delivery) => deliveries.push(delivery));
    const cut = this.#release;
    for (let position = this.#head; position < this.#entries.length; position++) {
      const entry = this.#entries[position] as Recorded;
      if (cut !== undefined && entry.node === cut.owner && entry.seq <= cut.lastSeq) continue;
      router.routeSubscribers(entry.message);
    }
    return deliveries;
  }

  #record(entry: Recorded): void {
    this.#entries.push(entry);
    if (this.#entries.length - this.#head <= this.#limit) return;
    // Bounded: a handover that takes too long loses its oldest messages, counted.
    this.#head++;
    this.#onDrop();
    if (this.#head >= 1024 && this.#head * 2 >= this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }
}
