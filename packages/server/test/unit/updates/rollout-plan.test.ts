import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FINAL_JOB_STATES, type JobState } from '@fleetward/protocol';
import { assignPhases, inWindow, phaseSizes, planRollout, type PlanJob } from '../../../src/updates/deployments/rollout-plan.js';
import { rolloutSpec, type RolloutSpec } from '../../../src/updates/deployments/spec.js';
import { DEPLOYMENT_STATES, type DeploymentState } from '../../../src/updates/deployments/states.js';

const T0 = Date.parse('2026-11-25T12:00:00.000Z');
const MIN = 60_000;

function spec(overrides: Parameters<typeof rolloutSpec>[0] = {}): RolloutSpec {
  return rolloutSpec({ phases: ['2', '50%', '100%'], abort: { failureRate: 0.5, minDevices: 4 }, timeoutSeconds: 600, startTimeoutSeconds: 3600, health: { action: 'off' }, ...overrides });
}

function jobsFor(count: number, s: RolloutSpec): PlanJob[] {
  const phases = assignPhases(count, s);
  return phases.map((phase, i) => ({ thing: `t${String(i).padStart(4, '0')}`, phase, state: 'queued', reason: null, releasedAt: null, startedAt: null, updatedAt: T0 }));
}

function apply(jobs: PlanJob[], plan: ReturnType<typeof planRollout>, now: number): PlanJob[] {
  const release = new Set(plan.release);
  const timeOut = new Set(plan.timeOut);
  const cancel = new Set(plan.cancel);
  return jobs.map((j) => {
    if (timeOut.has(j.thing)) return { ...j, state: 'timed-out', reason: 'timed-out', updatedAt: now };
    if (cancel.has(j.thing)) return { ...j, state: 'cancelled', reason: 'cancelled', updatedAt: now };
    if (release.has(j.thing)) return { ...j, releasedAt: now, updatedAt: now };
    return j;
  });
}

describe('phase sizes', () => {
  it('ok/cumulative counts and percentages: 10,25%,100% of 100', () => {
    expect(phaseSizes(100, spec({ phases: ['10', '25%', '100%'] }))).toEqual([10, 15, 75]);
  });
  it('ok/a percentage rounds up, so the first phase of a small fleet is never empty', () => {
    expect(phaseSizes(3, spec({ phases: ['10%', '100%'] }))).toEqual([1, 2]);
  });
  it('ok/phases that add nothing are dropped; what is left after the last phase goes in a final one', () => {
    expect(phaseSizes(10, spec({ phases: ['5', '20%', '8'] }))).toEqual([5, 3, 2]);
  });
  it('ok/exponential: each phase doubles', () => {
    expect(phaseSizes(20, spec({ phases: ['1'], exponential: true }))).toEqual([1, 2, 4, 8, 5]);
  });
  it('property: sizes are positive and add up to the total', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5000 }), fc.array(fc.oneof(fc.integer({ min: 1, max: 6000 }).map(String), fc.integer({ min: 1, max: 100 }).map((p) => `${p}%`)), { minLength: 1, maxLength: 6 }), fc.boolean(), (total, texts, exponential) => {
          let s: RolloutSpec;
          try {
            s = spec({ phases: exponential ? texts.slice(0, 1) : texts, exponential });
          } catch {
            return; // non-cumulative phases are refused at parse time
          }
          const sizes = phaseSizes(total, s);
          expect(sizes.every((n) => n > 0)).toBe(true);
          expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
        },
      ),
    );
  });
});

describe('maintenance window', () => {
  it('ok/inside and outside a daytime window', () => {
    const w = { start: '02:00', end: '04:00' };
    expect(inWindow(w, Date.parse('2026-01-01T02:00:00Z'))).toBe(true);
    expect(inWindow(w, Date.parse('2026-01-01T03:59:59Z'))).toBe(true);
    expect(inWindow(w, Date.parse('2026-01-01T04:00:00Z'))).toBe(false);
    expect(inWindow(w, Date.parse('2026-01-01T01:59:00Z'))).toBe(false);
  });
  it('ok/a window across midnight', () => {
    const w = { start: '22:00', end: '02:00' };
    expect(inWindow(w, Date.parse('2026-01-01T23:30:00Z'))).toBe(true);
    expect(inWindow(w, Date.parse('2026-01-01T01:00:00Z'))).toBe(true);
    expect(inWindow(w, Date.parse('2026-01-01T12:00:00Z'))).toBe(false);
  });
});

describe('planRollout', () => {
  it('ok/releases the first phase, then waits for it to finish before the next', () => {
    const s = spec();
    let jobs = jobsFor(10, s);
    let plan = planRollout({ spec: s, state: 'running', jobs, now: T0 });
    expect(plan.release).toHaveLength(2);
    expect(plan.phaseStarted).toBe(true);
    jobs = apply(jobs, plan, T0);
    plan = planRollout({ spec: s, state: 'running', jobs, now: T0 + MIN });
    expect(plan.release).toEqual([]);
    jobs = jobs.map((j) => (j.releasedAt !== null ? { ...j, state: 'succeeded' as const } : j));
    plan = planRollout({ spec: s, state: 'running', jobs, now: T0 + 2 * MIN });
    expect(plan.phase).toBe(1);
    expect(plan.release).toHaveLength(3);
  });

  it('ok/completes when every job is final', () => {
    const s = spec();
    const jobs = jobsFor(3, s).map((j) => ({ ...j, state: 'succeeded' as const, releasedAt: T0 }));
    expect(planRollout({ spec: s, state: 'running', jobs, now: T0 }).state).toBe('completed');
  });

  it('ok/times out an install in progress too long and a released job its device never started', () => {
    const s = spec();
    const jobs: PlanJob[] = [
      { thing: 'a', phase: 0, state: 'in-progress', reason: null, releasedAt: T0, startedAt: T0, updatedAt: T0 + 500_000 },
      { thing: 'b', phase: 0, state: 'queued', reason: null, releasedAt: T0, startedAt: null, updatedAt: T0 },
      { thing: 'c', phase: 0, state: 'queued', reason: 'maintenance-window', releasedAt: T0, startedAt: null, updatedAt: T0 + 3000_000 },
    ];
    expect(planRollout({ spec: s, state: 'running', jobs, now: T0 + 599_999 }).timeOut).toEqual([]);
    expect(planRollout({ spec: s, state: 'running', jobs, now: T0 + 600_000 }).timeOut).toEqual(['a']);
    // c reported waiting recently: its start timeout counts from that report.
    expect(planRollout({ spec: s, state: 'running', jobs, now: T0 + 3600_000 }).timeOut).toEqual(['a', 'b']);
  });

  it('fail/aborts past the failure rate once enough devices finished, cancelling what has not started', () => {
    const s = spec({ abort: { failureRate: 0.25, minDevices: 4 } });
    const finished: PlanJob[] = ['failed', 'failed', 'succeeded'].map((state, i) => ({ thing: `f${i}`, phase: 0, state: state as JobState, reason: state === 'failed' ? 'install-failed' : null, releasedAt: T0, startedAt: T0, updatedAt: T0 }));
    const rest: PlanJob[] = [
      { thing: 'r1', phase: 0, state: 'queued', reason: null, releasedAt: T0, startedAt: null, updatedAt: T0 },
      { thing: 'r2', phase: 0, state: 'in-progress', reason: null, releasedAt: T0, startedAt: T0, updatedAt: T0 },
      { thing: 'r3', phase: 1, state: 'queued', reason: null, releasedAt: null, startedAt: null, updatedAt: T0 },
    ];
    // 2 of 3 failed, but only 3 finished: below minDevices.
    expect(planRollout({ spec: s, state: 'running', jobs: [...finished, ...rest], now: T0 }).state).toBe('running');
    const more = [...finished, { ...finished[2], thing: 'f3' } as PlanJob, ...rest];
    const plan = planRollout({ spec: s, state: 'running', jobs: more, now: T0 });
    expect(plan).toMatchObject({ state: 'aborted', reason: 'failure-rate', release: [] });
    expect(plan.cancel).toEqual(['r1', 'r3']);
  });

  it('ok/a device rejecting the update counts as a failure; a job stalled before starting does not', () => {
    const s = spec({ abort: { failureRate: 0.4, minDevices: 2 } });
    const base = { phase: 0, releasedAt: T0, updatedAt: T0 };
    const rejected: PlanJob[] = [
      { ...base, thing: 'a', state: 'rejected', reason: 'signature', startedAt: null },
      { ...base, thing: 'b', state: 'succeeded', reason: null, startedAt: T0 },
    ];
    expect(planRollout({ spec: s, state: 'running', jobs: rejected, now: T0 }).state).toBe('aborted');
    const offline: PlanJob[] = [
      { ...base, thing: 'a', state: 'timed-out', reason: 'timed-out', startedAt: null },
      { ...base, thing: 'b', state: 'succeeded', reason: null, startedAt: T0 },
    ];
    expect(planRollout({ spec: s, state: 'running', jobs: offline, now: T0 }).state).toBe('completed');
    const stalled: PlanJob[] = [offline[1] as PlanJob, { ...base, thing: 'a', state: 'timed-out', reason: 'timed-out', startedAt: T0 }];
    expect(planRollout({ spec: s, state: 'running', jobs: stalled, now: T0 }).state).toBe('aborted');
  });

  it('ok/pauses on failed health confirmations when the gate pauses', () => {
    const s = spec({ abort: { failureRate: 1, minDevices: 1 }, health: { action: 'pause', minCohort: 3, confirmFailureRate: 0.3 } });
    const jobs: PlanJob[] = [
      ...['a', 'b'].map((thing) => ({ thing, phase: 0, state: 'failed' as const, reason: 'boot-failed' as const, releasedAt: T0, startedAt: T0, updatedAt: T0 })),
      { thing: 'c', phase: 0, state: 'succeeded', reason: null, releasedAt: T0, startedAt: T0, updatedAt: T0 },
      { thing: 'd', phase: 1, state: 'queued', reason: null, releasedAt: null, startedAt: null, updatedAt: T0 },
    ];
    const plan = planRollout({ spec: s, state: 'running', jobs, now: T0 });
    expect(plan).toMatchObject({ state: 'paused', reason: 'health-regression', release: [] });
    expect(plan.regressions.map((r) => r.metric)).toEqual(['health-confirmations']);
    // Accepted on resume: no longer gates.
    expect(planRollout({ spec: s, state: 'running', jobs, now: T0, acknowledged: ['health-confirmations'] }).release).toEqual(['d']);
  });

  it('ok/aborts on a device-metric regression when the gate aborts', () => {
    const s = spec({ phases: ['50%'], abort: { failureRate: 1, minDevices: 1 }, health: { action: 'abort', minCohort: 3 } });
    const jobs = jobsFor(8, s).map((j) => (j.phase === 0 ? { ...j, state: 'succeeded' as const, releasedAt: T0 } : j));
    const health = new Map(jobs.map((j) => [j.thing, { authFailures: 0, newListeningPorts: j.phase === 0 ? 1 : 0, reboots: 0 }]));
    const plan = planRollout({ spec: s, state: 'running', jobs, now: T0, health });
    expect(plan).toMatchObject({ state: 'aborted', reason: 'health-regression' });
    expect(plan.cancel).toHaveLength(4);
  });

  it('fail/outside its maintenance window a deployment releases nothing', () => {
    const s = spec({ maintenanceWindow: { start: '02:00', end: '04:00' } });
    const jobs = jobsFor(5, s);
    expect(planRollout({ spec: s, state: 'running', jobs, now: Date.parse('2026-01-01T12:00:00Z') }).release).toEqual([]);
    expect(planRollout({ spec: s, state: 'running', jobs, now: Date.parse('2026-01-01T03:00:00Z') }).release).toHaveLength(2);
  });
});

const specArb = fc.record({
  phases: fc.constantFrom(['1', '10%', '100%'], ['3', '50%'], ['25%', '60%', '100%'], ['5']),
  exponential: fc.boolean(),
  rate: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
  failureRate: fc.double({ min: 0, max: 1, noNaN: true }),
  minDevices: fc.integer({ min: 1, max: 10 }),
});

function specFrom(p: { phases: readonly string[]; exponential: boolean; rate: number | undefined; failureRate: number; minDevices: number }): RolloutSpec {
  return spec({ phases: p.exponential ? p.phases.slice(0, 1) : p.phases, exponential: p.exponential, ...(p.rate !== undefined && { ratePerMinute: p.rate }), abort: { failureRate: p.failureRate, minDevices: p.minDevices } });
}

const outcomeArb = fc.constantFrom<JobState | 'stall'>('succeeded', 'succeeded', 'succeeded', 'failed', 'rejected', 'in-progress', 'stall');

describe('planRollout properties', () => {
  it('never releases a job outside the current phase, more than a phase holds, or above the rate', () => {
    fc.assert(
      fc.property(specArb, fc.integer({ min: 1, max: 60 }), fc.array(outcomeArb, { minLength: 60, maxLength: 60 }), (p, count, outcomes) => {
        const s = specFrom(p);
        const sizes = phaseSizes(count, s);
        let jobs = jobsFor(count, s);
        let state: DeploymentState = 'running';
        let now = T0;
        for (let step = 0; step < 200 && state === 'running'; step++) {
          const plan = planRollout({ spec: s, state, jobs, now });
          const released = new Set(plan.release);
          for (const j of jobs.filter((j) => released.has(j.thing))) {
            expect(j.releasedAt).toBeNull();
            expect(j.state).toBe('queued');
            expect(j.phase).toBe(plan.phase);
          }
          if (plan.release.length > 0) expect(jobs.filter((j) => j.phase < (plan.phase ?? 0)).every((j) => FINAL_JOB_STATES.includes(j.state) || plan.timeOut.includes(j.thing))).toBe(true);
          jobs = apply(jobs, plan, now);
          for (let phase = 0; phase < sizes.length; phase++) expect(jobs.filter((j) => j.phase === phase && j.releasedAt !== null).length).toBeLessThanOrEqual(sizes[phase] as number);
          if (s.ratePerMinute !== null) expect(jobs.filter((j) => j.releasedAt !== null && j.releasedAt > now - MIN).length).toBeLessThanOrEqual(s.ratePerMinute);
          state = plan.state;
          // Devices answer: each released open job moves to its scripted outcome.
          jobs = jobs.map((j, i) => {
            if (j.releasedAt === null || FINAL_JOB_STATES.includes(j.state)) return j;
            const outcome = outcomes[i] as JobState | 'stall';
            if (outcome === 'stall') return j.state === 'queued' ? { ...j, state: 'in-progress', startedAt: now } : j;
            return { ...j, state: outcome, reason: outcome === 'failed' ? 'install-failed' : outcome === 'rejected' ? 'signature' : null, startedAt: j.startedAt ?? now, updatedAt: now };
          });
          now += 20_000;
        }
      }),
      { numRuns: 150 },
    );
  });

  it('every rollout ends: completed or aborted, every job in exactly one final state', () => {
    fc.assert(
      fc.property(specArb, fc.integer({ min: 1, max: 40 }), fc.array(outcomeArb, { minLength: 40, maxLength: 40 }), (p, count, outcomes) => {
        const s = specFrom(p);
        let jobs = jobsFor(count, s);
        let state: DeploymentState = 'running';
        let now = T0;
        for (let step = 0; step < 2000 && state !== 'completed' && state !== 'aborted'; step++) {
          const plan = planRollout({ spec: s, state, jobs, now });
          jobs = apply(jobs, plan, now);
          state = plan.state;
          jobs = jobs.map((j, i) => {
            if (j.releasedAt === null || FINAL_JOB_STATES.includes(j.state)) return j;
            const outcome = outcomes[i] as JobState | 'stall';
            if (outcome === 'stall' || outcome === 'in-progress') return j.state === 'queued' ? { ...j, state: 'in-progress', startedAt: now, updatedAt: now } : j;
            return { ...j, state: outcome, reason: outcome === 'failed' ? 'install-failed' : outcome === 'rejected' ? 'signature' : null, startedAt: j.startedAt ?? now, updatedAt: now };
          });
          now += 5 * MIN;
        }
        // An aborted deployment still times out the installs it let finish.
        for (let i = 0; i < 5; i++) {
          jobs = apply(jobs, planRollout({ spec: s, state, jobs, now }), now);
          now += 5 * MIN;
        }
        expect(['completed', 'aborted']).toContain(state);
        expect(new Set(jobs.map((j) => j.thing)).size).toBe(count);
        for (const j of jobs) expect(FINAL_JOB_STATES).toContain(j.state);
      }),
      { numRuns: 150 },
    );
  });

  it('a deployment that is not running releases nothing', () => {
    fc.assert(
      fc.property(specArb, fc.constantFrom(...DEPLOYMENT_STATES.filter((s) => s !== 'running')), fc.integer({ min: 1, max: 30 }), (p, state, count) => {
        const s = specFrom(p);
        const plan = planRollout({ spec: s, state, jobs: jobsFor(count, s), now: T0 });
        expect(plan.release).toEqual([]);
        if (state !== 'paused') expect(plan.state).toBe(state);
      }),
    );
  });
});
