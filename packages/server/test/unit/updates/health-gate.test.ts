import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareHealth, DEFAULT_HEALTH_THRESHOLDS, HEALTH_SAMPLE_CAP, type HealthGate, type HealthSample } from '../../../src/updates/deployments/health-gate.js';

const quiet: HealthSample = { authFailures: 0, newListeningPorts: 0, reboots: 0 };
const gate: HealthGate = { ...DEFAULT_HEALTH_THRESHOLDS, minCohort: 5 };
const many = (n: number, sample: Partial<HealthSample> = {}) => Array.from({ length: n }, () => ({ ...quiet, ...sample }));
const noConfirmations = { finished: 0, failed: 0 };

describe('compareHealth', () => {
  it('ok/no regression when the updated devices behave like the others', () => {
    expect(compareHealth({ updated: many(10, { authFailures: 2, reboots: 1 }), baseline: many(10, { authFailures: 2, reboots: 1 }), confirmations: noConfirmations }, gate)).toEqual([]);
  });

  it('fail/more authorization failures per device than ratio × baseline + margin', () => {
    const [regression] = compareHealth({ updated: many(10, { authFailures: 4 }), baseline: many(10, { authFailures: 1 }), confirmations: noConfirmations }, gate);
    expect(regression).toMatchObject({ metric: 'auth-failures', updated: 4, baseline: 1, limit: 3, updatedDevices: 10, baselineDevices: 10 });
  });

  it('fail/new listening ports on updated devices where the others opened none', () => {
    const updated = [...many(3, { newListeningPorts: 1 }), ...many(5)];
    expect(compareHealth({ updated, baseline: many(8), confirmations: noConfirmations }, gate).map((r) => r.metric)).toEqual(['listening-ports']);
  });

  it('fail/more reboots', () => {
    expect(compareHealth({ updated: many(6, { reboots: 3 }), baseline: many(6, { reboots: 0 }), confirmations: noConfirmations }, gate).map((r) => r.metric)).toEqual(['reboots']);
  });

  it('fail/failed health confirmations above the share, once enough jobs finished', () => {
    expect(compareHealth({ updated: [], baseline: [], confirmations: { finished: 10, failed: 3 } }, gate).map((r) => r.metric)).toEqual(['health-confirmations']);
    expect(compareHealth({ updated: [], baseline: [], confirmations: { finished: 4, failed: 4 } }, gate)).toEqual([]);
    expect(compareHealth({ updated: [], baseline: [], confirmations: { finished: 10, failed: 2 } }, gate)).toEqual([]);
  });

  it('ok/small cohorts are not compared: below minCohort on either side nothing regresses', () => {
    expect(compareHealth({ updated: many(4, { authFailures: 10, reboots: 10, newListeningPorts: 10 }), baseline: many(50), confirmations: noConfirmations }, gate)).toEqual([]);
    expect(compareHealth({ updated: many(50, { authFailures: 10 }), baseline: many(4), confirmations: noConfirmations }, gate)).toEqual([]);
  });

  it('ok/one noisy device cannot move a cohort alone (each device counts up to the cap)', () => {
    const updated = [...many(9), { ...quiet, authFailures: 10_000, reboots: 500 }];
    expect(compareHealth({ updated, baseline: many(10), confirmations: noConfirmations }, gate)).toEqual([]);
    expect(HEALTH_SAMPLE_CAP).toBeLessThanOrEqual(10);
  });

  it('ok/a gate that is off never regresses', () => {
    expect(compareHealth({ updated: many(10, { authFailures: 9 }), baseline: many(10), confirmations: { finished: 10, failed: 10 } }, { ...gate, action: 'off' })).toEqual([]);
  });

  it('property: identical cohorts never regress on device metrics', () => {
    const sample = fc.record({ authFailures: fc.nat(50), newListeningPorts: fc.nat(5), reboots: fc.nat(5) });
    fc.assert(
      fc.property(fc.array(sample, { minLength: 0, maxLength: 40 }), (samples) => {
        expect(compareHealth({ updated: samples, baseline: samples, confirmations: noConfirmations }, gate)).toEqual([]);
      }),
    );
  });

  it('property: the updated cohort doing no worse than the baseline never regresses', () => {
    const sample = fc.record({ authFailures: fc.nat(50), newListeningPorts: fc.nat(5), reboots: fc.nat(5) });
    fc.assert(
      fc.property(fc.array(sample, { minLength: 5, maxLength: 40 }), (baseline) => {
        const updated = baseline.map((s) => ({ authFailures: Math.floor(s.authFailures / 2), newListeningPorts: 0, reboots: Math.max(0, s.reboots - 1) }));
        expect(compareHealth({ updated, baseline, confirmations: noConfirmations }, gate)).toEqual([]);
      }),
    );
  });
});
