import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allowedTransitions, canTransition, isFinal, mayConnect, THING_STATES, type ThingState } from '../../src/identity/registry/lifecycle.js';

describe('thing lifecycle', () => {
  it('follows pending → active → suspended | quarantined → decommissioned, and nothing else', () => {
    const allowed: Record<ThingState, ThingState[]> = {
      pending: ['active', 'decommissioned'],
      active: ['suspended', 'quarantined', 'decommissioned'],
      suspended: ['active', 'quarantined', 'decommissioned'],
      quarantined: ['active', 'suspended', 'decommissioned'],
      decommissioned: [],
    };
    for (const from of THING_STATES) {
      for (const to of THING_STATES) expect(canTransition(from, to), `${from} → ${to}`).toBe(allowed[from].includes(to));
    }
  });

  it('decommissioned is final and reachable from everywhere; nothing returns to pending; only active may connect (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...THING_STATES), { maxLength: 30 }), (attempts) => {
        let state: ThingState = 'pending';
        for (const next of attempts) {
          if (canTransition(state, next)) state = next;
          expect(canTransition(state, 'pending')).toBe(false);
        }
        if (state !== 'decommissioned') expect(canTransition(state, 'decommissioned')).toBe(true);
        expect(isFinal(state)).toBe(state === 'decommissioned');
        expect(mayConnect(state)).toBe(state === 'active');
        expect(allowedTransitions(state).every((to) => canTransition(state, to))).toBe(true);
      }),
    );
  });
});
