import { positiveInteger } from './checks.js';

/** The key under which refusals of keys that had to make room are summed. */
export const OTHER_KEY = '*other*';

export interface RefusalSummary<R extends string = string> {
  /** A thing name, a source key, or OTHER_KEY. */
  readonly key: string;
  readonly counts: Readonly<Partial<Record<R, number>>>;
  readonly total: number;
  /** First and last refusal counted (epoch ms). */
  readonly firstAt: number;
  readonly lastAt: number;
  /** For OTHER_KEY: how many keys were folded into it to make room (a key folded twice counts twice). */
  readonly keysFolded: number;
}

export interface RefusalAggregatorOptions {
  /** A key gets at most one summary per interval. */
  readonly intervalMs: number;
  /** Keys counted by name at once; the rest are summed under OTHER_KEY. */
  readonly maxKeys: number;
}

interface Tally<R extends string> {
  readonly counts: Map<R, number>;
  total: number;
  /** When this tally's interval started: it is summarized `intervalMs` later, not before. */
  readonly openedAt: number;
  firstAt: number;
  lastAt: number;
  keysFolded: number;
}

/** Keys looked at to find one to fold when the table is full: keeps `record` O(1). */
const SAMPLE = 8;

/**
 * Turns a flood of refusals into at most one summary per key per interval, so that the gateway
 * writes one audit event ("thing dev-1: 5,321 refusals (message-rate), t0–t1", see throttle-audit.ts) where a
 * flood would have written millions. Pure: `record` counts, `drain` (from a periodic job) returns
 * the summaries whose interval has passed and forgets them; `flush` returns all (at shutdown).
 *
 * A key's interval opens with its first refusal after its last summary, so summaries of one key
 * are always at least `intervalMs` apart. Memory is bounded by `maxKeys`: when full, a new key
 * takes the place of the smallest of the next few keys under a rotating hand, whose counts move to
 * OTHER_KEY (approximately the top keys stay named; every refusal stays counted).
 */
export class RefusalAggregator<R extends string = string> {
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #tallies = new Map<string, Tally<R>>();
  #other: Tally<R> | undefined;
  #hand: Iterator<[string, Tally<R>]> | undefined;

  constructor(options: RefusalAggregatorOptions) {
    this.#intervalMs = positiveInteger('intervalMs', options.intervalMs);
    this.#maxKeys = positiveInteger('maxKeys', options.maxKeys);
  }

  /** Keys counted by name now (OTHER_KEY not included). */
  get size(): number {
    return this.#tallies.size;
  }

  record(key: string, reason: R, now: number): void {
    const tally = this.#tallies.get(key) ?? this.#open(key, now);
    tally.counts.set(reason, (tally.counts.get(reason) ?? 0) + 1);
    tally.total++;
    // Min and max, not first and last: times from several sockets may arrive slightly out of order.
    if (now < tally.firstAt) tally.firstAt = now;
    if (now > tally.lastAt) tally.lastAt = now;
  }

  /** Summaries of the keys whose interval has passed; they start afresh. */
  drain(now: number): RefusalSummary<R>[] {
    const due: RefusalSummary<R>[] = [];
    for (const [key, tally] of this.#tallies) {
      if (now - tally.openedAt < this.#intervalMs) continue;
      this.#tallies.delete(key);
      due.push(summarize(key, tally));
    }
    if (this.#other !== undefined && now - this.#other.openedAt >= this.#intervalMs) {
      due.push(summarize(OTHER_KEY, this.#other));
      this.#other = undefined;
    }
    return due;
  }

  /** Every summary, due or not (at shutdown, so that nothing counted is lost). */
  flush(): RefusalSummary<R>[] {
    const all = [...this.#tallies].map(([key, tally]) => summarize(key, tally));
    if (this.#other !== undefined) all.push(summarize(OTHER_KEY, this.#other));
    this.#tallies.clear();
    this.#other = undefined;
    return all;
  }

  #open(key: string, now: number): Tally<R> {
    if (this.#tallies.size >= this.#maxKeys) this.#foldSmallest(now);
    const tally = newTally<R>(now);
    this.#tallies.set(key, tally);
    return tally;
  }

  #foldSmallest(now: number): void {
    let smallest: [string, Tally<R>] | undefined;
    for (let i = 0; i < SAMPLE; i++) {
      let step = this.#hand?.next();
      if (step === undefined || step.done === true) {
        this.#hand = this.#tallies.entries();
        step = this.#hand.next();
        if (step.done === true) break;
      }
      if (smallest === undefined || step.value[1].total < smallest[1].total) smallest = step.value;
    }
    if (smallest === undefined) return;
    this.#tallies.delete(smallest[0]);
    this.#other ??= newTally<R>(now);
    fold(this.#other, smallest[1]);
  }
}

function newTally<R extends string>(now: number): Tally<R> {
  return { counts: new Map(), total: 0, openedAt: now, firstAt: now, lastAt: now, keysFolded: 0 };
}

function fold<R extends string>(into: Tally<R>, from: Tally<R>): void {
  for (const [reason, count] of from.counts) into.counts.set(reason, (into.counts.get(reason) ?? 0) + count);
  if (into.total === 0 || from.firstAt < into.firstAt) into.firstAt = from.firstAt;
  into.lastAt = Math.max(into.lastAt, from.lastAt);
  into.total += from.total;
  into.keysFolded++;
}

function summarize<R extends string>(key: string, tally: Tally<R>): RefusalSummary<R> {
  const counts: Partial<Record<R, number>> = {};
  for (const [reason, count] of tally.counts) counts[reason] = count;
  return { key, counts, total: tally.total, firstAt: tally.firstAt, lastAt: tally.lastAt, keysFolded: tally.keysFolded };
}
