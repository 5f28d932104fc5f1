import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicies, type Decision } from '../../src/access/policy/index.js';
import { facts, policies, request, topicFilter } from './policy-arbitraries.js';
import { referenceDecide, type ReferenceDecision } from './policy-reference.js';

/** The comparable part of a decision: outcome, reason, deciding statement and, for unions, the statements together. */
function comparable(decision: Decision | ReferenceDecision): ReferenceDecision {
  const d = decision as ReferenceDecision;
  return {
    allowed: d.allowed,
    reason: d.reason,
    ...(d.statement !== undefined && { statement: { policy: d.statement.policy, index: d.statement.index } }),
    ...(d.together !== undefined && { together: d.together.map((r) => ({ policy: r.policy, index: r.index })) }),
  };
}

describe('compiled policies agree with the naive reference', () => {
  it('for every action, over random policies, facts and requests (property)', () => {
    fc.assert(
      fc.property(policies, facts, fc.array(request, { minLength: 1, maxLength: 6 }), (docs, f, requests) => {
        const compiled = compilePolicies(docs, f);
        for (const [action, resource] of requests) {
          expect(comparable(compiled.decide(action, resource)), `${action} ${JSON.stringify(resource)}`).toEqual(referenceDecide(docs, f, action, resource));
        }
      }),
      { numRuns: 600 },
    );
  });

  it('for subscribe filters in particular, where containment and overlap are exact (property)', () => {
    fc.assert(
      fc.property(policies, facts, fc.array(topicFilter, { minLength: 1, maxLength: 8 }), (docs, f, filters) => {
        const compiled = compilePolicies(docs, f);
        for (const filter of filters) expect(comparable(compiled.decide('mqtt:subscribe', filter)), filter).toEqual(referenceDecide(docs, f, 'mqtt:subscribe', filter));
      }),
      { numRuns: 400 },
    );
  });

  it('answers the same from its cache, also while the cache evicts, as without one (property)', () => {
    fc.assert(
      fc.property(policies, facts, fc.array(request, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 4 }), (docs, f, requests, size) => {
        const cached = compilePolicies(docs, f, { cacheEntriesPerAction: size });
        const uncached = compilePolicies(docs, f, { cacheEntriesPerAction: 0 });
        for (const [action, resource] of [...requests, ...requests]) {
          expect(cached.decide(action, resource)).toEqual(uncached.decide(action, resource));
          expect(cached.allows(action, resource)).toBe(uncached.decide(action, resource).allowed);
        }
        expect(cached.cachedDecisions).toBeLessThanOrEqual(size * 5);
        expect(uncached.cachedDecisions).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});
