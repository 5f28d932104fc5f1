/** What a node cannot authorize without (rule 6): the database (registry, policies) and, in a cluster, Redis (sessions). */
export const DEPENDENCIES = ['database', 'redis'] as const;
export type Dependency = (typeof DEPENDENCIES)[number];

/** An outage seen by the probes: since when (epoch ms), and whether it outlasted the bound. */
export interface Outage {
  readonly since: number;
  readonly expired: boolean;
}

/** A change the caller acts on: log, audit, count, and on `expired` close the live sessions. */
export type OutageChange =
  | { readonly kind: 'down'; readonly dependency: Dependency; readonly at: number }
  | { readonly kind: 'expired'; readonly dependency: Dependency; readonly since: number; readonly at: number }
  | { readonly kind: 'up'; readonly dependency: Dependency; readonly since: number; readonly at: number; readonly expired: boolean };

/**
 * How long each dependency has been away, and whether that is longer than live sessions may keep
 * the policy they were admitted with. Pure: the probes' answers and the time come in, the changes
 * go out; each change is reported once per outage.
 */
export class Outages {
  readonly #boundMs: number;
  readonly #current = new Map<Dependency, Outage>();

  constructor(boundMs: number) {
    if (!Number.isInteger(boundMs) || boundMs < 0) throw new RangeError(`the outage bound must be a whole number of ms, not ${String(boundMs)}`);
    this.#boundMs = boundMs;
  }

  get boundMs(): number {
    return this.#boundMs;
  }

  /** Takes one probe answer; returns what changed (nothing, `down`, `expired` or `up`). */
  observe(dependency: Dependency, reachable: boolean, now: number): OutageChange | null {
    const outage = this.#current.get(dependency);
    if (reachable) {
      if (outage === undefined) return null;
      this.#current.delete(dependency);
      return { kind: 'up', dependency, since: outage.since, at: now, expired: outage.expired };
    }
    if (outage === undefined) {
      this.#current.set(dependency, { since: now, expired: false });
      return { kind: 'down', dependency, at: now };
    }
    // Strictly longer than the bound: a bound of N s lets a session live through an N s outage.
    if (outage.expired || now - outage.since <= this.#boundMs) return null;
    this.#current.set(dependency, { since: outage.since, expired: true });
    return { kind: 'expired', dependency, since: outage.since, at: now };
  }

  /** The dependency's outage in progress, if any. */
  of(dependency: Dependency): Outage | undefined {
    return this.#current.get(dependency);
  }

  /** The first dependency whose outage outlasted the bound: while there is one, nothing new is admitted. */
  expired(): Dependency | null {
    for (const [dependency, outage] of this.#current) if (outage.expired) return dependency;
    return null;
  }
}
