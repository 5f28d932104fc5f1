import { isIPv6 } from 'node:net';

interface SourceState {
  /** Failure times within the window, oldest first, at most `limit` of them. */
  failures: number[];
  /** Epoch ms until which the source is refused, or 0. */
  blockedUntil: number;
}

/**
 * Counts failed authentications per source. A source that fails `limit` times within `windowMs`
 * is blocked for `windowMs` from that failure. IPv6 sources are counted per /64, the block an
 * attacker usually holds. Memory is bounded: the least recently failing sources are forgotten
 * first. Pure: the caller passes the time.
 */
export class FailureThrottle {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxSources: number;
  readonly #sources = new Map<string, SourceState>();

  constructor(options: { limit: number; windowMs: number; maxSources?: number }) {
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#maxSources = options.maxSources ?? 100_000;
  }

  /** When the source may try again (epoch ms), or null if it is not blocked. */
  blockedUntil(source: string, nowMs: number): number | null {
    const state = this.#sources.get(sourceKey(source));
    return state !== undefined && state.blockedUntil > nowMs ? state.blockedUntil : null;
  }

  recordFailure(source: string, nowMs: number): { readonly blocked: boolean; readonly newlyBlocked: boolean } {
    const key = sourceKey(source);
    const state = this.#sources.get(key) ?? { failures: [], blockedUntil: 0 };
    const wasBlocked = state.blockedUntil > nowMs;
    state.failures = [...state.failures.filter((t) => nowMs - t < this.#windowMs), nowMs].slice(-this.#limit);
    if (state.failures.length >= this.#limit) state.blockedUntil = nowMs + this.#windowMs;
    // Re-inserting keeps the map ordered by last failure, so the first key is the stalest.
    this.#sources.delete(key);
    this.#sources.set(key, state);
    if (this.#sources.size > this.#maxSources) this.#sources.delete(this.#sources.keys().next().value as string);
    const blocked = state.blockedUntil > nowMs;
    return { blocked, newlyBlocked: blocked && !wasBlocked };
  }
}

function sourceKey(source: string): string {
  const address = source.startsWith('::ffff:') ? source.slice(7) : source;
  if (!isIPv6(address)) return address;
  const groups = new URL(`http://[${address}]/`).hostname.slice(1, -1).split('::');
  const head = (groups[0] ?? '').split(':').filter(Boolean);
  const tail = groups.length > 1 ? (groups[1] ?? '').split(':').filter(Boolean) : [];
  const full = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return `${full.slice(0, 4).join(':')}::/64`;
}
