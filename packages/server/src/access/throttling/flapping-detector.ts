import { BoundedTable } from './bounded-table.js';
import { positiveInteger } from './checks.js';

export interface FlappingOptions {
  /** Connects within `windowMs` that make a thing flapping (EMQX: max_count). */
  readonly maxConnects: number;
  readonly windowMs: number;
  /** How long a flapping thing is banned. */
  readonly banMs: number;
  readonly maxTrackedThings: number;
}

export type FlappingVerdict = { readonly flapping: false } | { readonly flapping: true; readonly banUntil: number };

const STEADY: FlappingVerdict = { flapping: false };

/**
 * The last `maxConnects` connect times of one thing: appended until there are that many, then a
 * ring. Grown, not allocated at full size: most things connect a few times, and an operator may
 * set a limit of thousands (a ring of that size per connecting thing cost more than the rest of
 * admission).
 */
interface ConnectTimes {
  readonly times: number[];
  /** Once the ring is full: where the next time is written, which is also the oldest kept time. */
  next: number;
}

/**
 * Flapping detection, as EMQX does it: a thing that connects `maxConnects` times within `windowMs`
 * (a reconnect loop, two devices with one certificate taking each other over with 0x8E, a script
 * gone wrong) is flapping, and the gateway bans it for `banMs`. Counted: admitted connects only
 * (`Throttle.allowConnect` records after the ban, rate and cap checks), so a device retrying
 * against a full node or during its ban never extends or earns a ban. After a ban the count restarts.
 *
 * Exact sliding window over the last `maxConnects` times. Bounded: an entry is forgotten once its
 * newest connect is older than the window (it could not count any more); when the table is full
 * of active things a new thing is not tracked (counted in `untracked`) rather than sharing a
 * counter, since a shared counter would ban whoever happened to connect last.
 */
export class FlappingDetector {
  readonly #maxConnects: number;
  readonly #windowMs: number;
  readonly #banMs: number;
  readonly #table: BoundedTable<ConnectTimes>;
  #untracked = 0;

  constructor(options: FlappingOptions) {
    // One connect is not a storm: with maxConnects 1 every connect would ban.
    if (options.maxConnects < 2) throw new RangeError('maxConnects must be at least 2');
    this.#maxConnects = positiveInteger('maxConnects', options.maxConnects, 10_000);
    this.#windowMs = positiveInteger('windowMs', options.windowMs);
    this.#banMs = positiveInteger('banMs', options.banMs);
    this.#table = new BoundedTable(options.maxTrackedThings, {
      create: () => ({ times: [], next: 0 }),
      isIdle: (entry, now) => entry.times.length === 0 || now - newest(entry) >= this.#windowMs,
    });
  }

  /** Counts a connect of `thing`; says when it is flapping, and until when to ban it. */
  record(thing: string, now: number): FlappingVerdict {
    const entry = this.#table.getOrCreate(thing, now);
    if (entry === undefined) {
      this.#untracked++;
      return STEADY;
    }
    const { times } = entry;
    if (times.length < this.#maxConnects) {
      times.push(now);
      if (times.length < this.#maxConnects) return STEADY;
      entry.next = 0;
    } else {
      times[entry.next] = now;
      entry.next = (entry.next + 1) % this.#maxConnects;
    }
    // The ring holds exactly the last maxConnects times, and `next` now points at the oldest of them.
    const oldest = times[entry.next] as number;
    if (now - oldest >= this.#windowMs) return STEADY;
    times.length = 0;
    entry.next = 0;
    return { flapping: true, banUntil: now + this.#banMs };
  }

  sweep(now: number): number {
    return this.#table.sweep(now);
  }

  stats(): { readonly tracked: number; readonly untracked: number } {
    return { tracked: this.#table.size, untracked: this.#untracked };
  }
}

function newest(entry: ConnectTimes): number {
  const { times } = entry;
  return times[(entry.next + times.length - 1) % times.length] as number;
}
