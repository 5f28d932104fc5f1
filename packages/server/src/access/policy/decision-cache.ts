import { POLICY_ACTIONS, type Decision, type PolicyAction } from './types.js';

/** Default entries per action and connection: devices use few topics; 5 actions x 128 x ~100 B ≈ 64 KiB at worst. */
export const DEFAULT_CACHE_ENTRIES_PER_ACTION = 128;

const ACTION_SLOT: Readonly<Record<PolicyAction, number>> = Object.fromEntries(POLICY_ACTIONS.map((action, i) => [action, i])) as Record<PolicyAction, number>;

/**
 * Decisions by action and resource, bounded: when an action's map is full its oldest entry goes
 * (first in, first out: a hit costs one Map lookup and no reordering). Decisions are frozen and
 * shared, so a hit allocates nothing. The last decision of each action is also kept beside the
 * maps: a device publishing to one topic again is answered by comparing the topic, without hashing
 * the new string that each PUBLISH brings.
 */
export class DecisionCache {
  readonly #maps: (Map<string, Decision> | undefined)[] = [];
  readonly #maxPerAction: number;
  readonly #lastResource: (string | undefined)[] = [];
  readonly #lastDecision: (Decision | undefined)[] = [];

  constructor(maxPerAction: number) {
    this.#maxPerAction = Math.max(0, Math.floor(maxPerAction));
  }

  get(action: PolicyAction, resource: string): Decision | undefined {
    const slot = ACTION_SLOT[action];
    if (this.#lastResource[slot] === resource) return this.#lastDecision[slot];
    const decision = this.#maps[slot]?.get(resource);
    if (decision !== undefined) this.#remember(slot, resource, decision);
    return decision;
  }

  set(action: PolicyAction, resource: string, decision: Decision): void {
    if (this.#maxPerAction === 0) return;
    const slot = ACTION_SLOT[action];
    let map = this.#maps[slot];
    if (map === undefined) {
      map = new Map();
      this.#maps[slot] = map;
    }
    if (map.size >= this.#maxPerAction) map.delete(map.keys().next().value as string);
    map.set(resource, decision);
    this.#remember(slot, resource, decision);
  }

  #remember(slot: number, resource: string, decision: Decision): void {
    this.#lastResource[slot] = resource;
    this.#lastDecision[slot] = decision;
  }

  get size(): number {
    return this.#maps.reduce((sum, map) => sum + (map?.size ?? 0), 0);
  }
}
