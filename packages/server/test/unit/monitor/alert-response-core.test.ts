import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACTIVE_ALERT_STATES, ALERT_STATES, canTransitionAlert, maxSeverity, type AlertState } from '../../../src/monitor/alerts/alert-states.js';
import { suppresses } from '../../../src/monitor/alerts/suppressions.js';
import { backoffMs, signBody, verifySignature } from '../../../src/webhooks/webhook-signature.js';
import { SEVERITIES } from '../../../src/monitor/types.js';

describe('alert lifecycle', () => {
  it('goes open → acknowledged → resolved (or open → resolved), and resolved is final', () => {
    const allowed = ALERT_STATES.flatMap((from) => ALERT_STATES.filter((to) => canTransitionAlert(from, to)).map((to) => `${from}→${to}`));
    expect(allowed).toEqual(['open→acknowledged', 'open→resolved', 'acknowledged→resolved']);
    expect(ACTIVE_ALERT_STATES).toEqual(['open', 'acknowledged']);
  });

  it('never goes back: any walk along the table ends in resolved within two steps', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...ALERT_STATES), { maxLength: 10 }), (targets) => {
        let state: AlertState = 'open';
        let steps = 0;
        for (const to of targets) {
          if (canTransitionAlert(state, to)) {
            expect(ALERT_STATES.indexOf(to)).toBeGreaterThan(ALERT_STATES.indexOf(state));
            state = to;
            steps += 1;
          }
        }
        expect(steps).toBeLessThanOrEqual(2);
      }),
    );
  });

  it('a bump never lowers the severity', () => {
    fc.assert(fc.property(fc.constantFrom(...SEVERITIES), fc.constantFrom(...SEVERITIES), (a, b) => SEVERITIES.indexOf(maxSeverity(a, b)) === Math.max(SEVERITIES.indexOf(a), SEVERITIES.indexOf(b))));
  });
});

describe('suppressions', () => {
  const now = new Date('2026-12-01T00:00:00.000Z');
  const base = { behavior: null, thing: null, group: null, expiresAt: '2026-12-02T00:00:00.000Z' };
  const detection = { behavior: 'new-listening-port', thing: 'cam-1' };
  it.each([
    ['ok/by behaviour', { ...base, behavior: 'new-listening-port' }, [], true],
    ['ok/by thing', { ...base, thing: 'cam-1' }, [], true],
    ['ok/by group', { ...base, group: 'lab' }, ['lab'], true],
    ['ok/by behaviour and thing', { ...base, behavior: 'new-listening-port', thing: 'cam-1' }, [], true],
    ['fail/another behaviour', { ...base, behavior: 'auth-failures' }, [], false],
    ['fail/another thing', { ...base, thing: 'cam-2' }, [], false],
    ['fail/not in the group', { ...base, group: 'lab' }, ['prod'], false],
    ['fail/expired', { ...base, thing: 'cam-1', expiresAt: '2026-12-01T00:00:00.000Z' }, [], false],
  ] as const)('%s', (_name, suppression, groups, expected) => {
    expect(suppresses(suppression, detection, groups, now)).toBe(expected);
  });
});

describe('webhook signatures', () => {
  const body = '{"type":"fleetward.alert"}';
  it('ok/verifies the HMAC-SHA256 of the raw body', () => {
    const header = signBody('s3cret-s3cret-s3cret', body);
    expect(header).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature('s3cret-s3cret-s3cret', body, header)).toBe(true);
  });
  it.each([
    ['fail/another secret', 'other-secret-value', body],
    ['fail/modified body', 's3cret-s3cret-s3cret', `${body} `],
  ])('%s', (_name, secret, received) => {
    expect(verifySignature(secret, received, signBody('s3cret-s3cret-s3cret', body))).toBe(false);
  });
  it('fail/missing or malformed header', () => {
    expect(verifySignature('s', body, undefined)).toBe(false);
    expect(verifySignature('s', body, 'md5=abc')).toBe(false);
  });
  it('backs off exponentially, capped', () => {
    expect([1, 2, 3, 4, 10].map((n) => backoffMs(n, { baseMs: 1000, capMs: 5000 }))).toEqual([1000, 2000, 4000, 5000, 5000]);
  });
});
