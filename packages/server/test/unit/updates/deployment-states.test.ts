import { describe, expect, it } from 'vitest';
import { JOB_STATES, REPORTED_JOB_STATES, type JobState, type JobUpdate } from '@fleetward/protocol';
import { parsePhases, rolloutSpec } from '../../../src/updates/deployments/spec.js';
import { canTransitionDeployment, checkJobReport, DEPLOYMENT_STATES, isFinalDeployment, isFinalJob } from '../../../src/updates/deployments/states.js';
import { refusalOf } from '../../helpers/refusals.js';

const report = (state: JobUpdate['state'], extra: Partial<JobUpdate> = {}): JobUpdate => ({ v: 1, state, ...extra });

describe('job reports', () => {
  it('fail/a final job takes no report at all', () => {
    for (const current of JOB_STATES.filter((s) => isFinalJob(s))) {
      for (const state of REPORTED_JOB_STATES) {
        const extra = state === 'failed' ? { reason: 'install-failed' as const } : state === 'rejected' ? { reason: 'signature' as const } : {};
        expect(refusalOf(() => checkJobReport(current, report(state, extra))).code, `${current} → ${state}`).toBe('FW_ERR_CONFLICT');
      }
    }
  });

  it('ok/queued → waiting, in progress, succeeded, failed, rejected; in progress cannot wait again', () => {
    expect(() => checkJobReport('queued', report('queued', { reason: 'maintenance-window' }))).not.toThrow();
    expect(() => checkJobReport('queued', report('in-progress', { step: 'downloading', bytes: 10, totalBytes: 100 }))).not.toThrow();
    expect(() => checkJobReport('in-progress', report('failed', { reason: 'boot-failed' }))).not.toThrow();
    expect(() => checkJobReport('in-progress', report('rejected', { reason: 'signature' }))).not.toThrow();
    expect(refusalOf(() => checkJobReport('in-progress', report('queued', { reason: 'battery-low' }))).code).toBe('FW_ERR_CONFLICT');
  });

  it('fail/reasons, steps and byte counts must fit the reported state', () => {
    const cases: [JobState, JobUpdate][] = [
      ['queued', report('queued', { reason: 'signature' })],
      ['queued', report('failed')],
      ['queued', report('rejected', { reason: 'install-failed' })],
      ['queued', report('failed', { reason: 'maintenance-window' })],
      ['queued', report('succeeded', { step: 'installing' })],
      ['in-progress', report('in-progress', { bytes: 101, totalBytes: 100 })],
      ['in-progress', report('in-progress', { reason: 'other' })],
    ];
    for (const [current, update] of cases) expect(refusalOf(() => checkJobReport(current, update)).code, JSON.stringify(update)).toBe('FW_ERR_VALIDATION');
  });
});

describe('deployment states', () => {
  it('final states have no way out; paused resumes only to running', () => {
    for (const from of DEPLOYMENT_STATES) for (const to of DEPLOYMENT_STATES) if (isFinalDeployment(from)) expect(canTransitionDeployment(from, to)).toBe(false);
    expect(canTransitionDeployment('paused', 'running')).toBe(true);
    expect(canTransitionDeployment('paused', 'completed')).toBe(false);
  });
});

describe('rollout spec', () => {
  it('fail/bad phases are refused', () => {
    for (const phases of [[], ['0'], ['0%'], ['101%'], ['abc'], ['10', '5'], ['50%', '25%'], ['-1'], Array.from({ length: 21 }, (_, i) => String(i + 1))]) {
      expect(refusalOf(() => parsePhases(phases, false)).code, JSON.stringify(phases)).toBe('FW_ERR_VALIDATION');
    }
    expect(refusalOf(() => parsePhases(['1', '10'], true)).code).toBe('FW_ERR_VALIDATION');
  });

  it('fail/bad rates, thresholds, timeouts and windows are refused', () => {
    const bad = [
      { ratePerMinute: 0 },
      { ratePerMinute: 1.5 },
      { abort: { failureRate: 1.5 } },
      { abort: { failureRate: -0.1 } },
      { abort: { minDevices: 0 } },
      { timeoutSeconds: 5 },
      { maintenanceWindow: { start: '25:00', end: '02:00' } },
      { maintenanceWindow: { start: '02:00', end: '02:00' } },
      { health: { action: 'maybe' as 'off' } },
      { health: { ratio: 0.5 } },
    ];
    for (const request of bad) expect(refusalOf(() => rolloutSpec(request)).code, JSON.stringify(request)).toBe('FW_ERR_VALIDATION');
  });

  it('ok/defaults are filled', () => {
    expect(rolloutSpec({})).toMatchObject({ phases: [{ kind: 'percent', percent: 5 }, { kind: 'percent', percent: 25 }, { kind: 'percent', percent: 100 }], ratePerMinute: null, exponential: false, maintenanceWindow: null });
  });
});
