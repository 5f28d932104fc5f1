import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FleetwardError } from '@fleetward/protocol';
import { DownloadHTTPError, DownloadLengthMismatchError } from 'tuf-js/dist/error.js';
import { parseAgentConfig } from '../../src/config/agent-config.js';
import { parseSimOptions } from '../../src/sim/sim-options.js';
import { simulatedUpdateFaults } from '../../src/sim/simulated-device.js';
import { inMaintenanceWindow, nextWindowOpening } from '../../src/updates/maintenance-window.js';
import { confirmed, initialSlotState, rolledBack, withFinished } from '../../src/updates/slot-state.js';
import { decideInstall, signedRelease, type SignedRelease } from '../../src/updates/update-policy.js';
import { classifyUpdateError, isRetryable } from '../../src/updates/update-refusal.js';

const base = { thing: 'dev-1', mqttUrl: 'mqtts://fleet.example:8883', caFile: 'ca.pem', stateDir: 'state' };

describe('updates configuration', () => {
  it('is off without a trusted root, with safe defaults', () => {
    expect(parseAgentConfig(base, '/etc/fleetward').updates).toEqual({
      trustedRoot: null,
      hardware: null,
      maintenanceWindow: null,
      minBatteryPercent: 30,
      healthTimeoutSeconds: 300,
      maxBootAttempts: 3,
      maxArtifactBytes: 1024 ** 3,
      downloadAttempts: 5,
      checkIntervalSeconds: 60,
    });
    expect(parseAgentConfig(base, '/etc/fleetward').firmware.securityVersion).toBe(0);
  });

  it('resolves the trusted root against the file and takes a window', () => {
    const config = parseAgentConfig({ ...base, firmware: { version: '1.4.0', securityVersion: 5 }, updates: { trustedRoot: 'root.json', hardware: 'sensor-v2', maintenanceWindow: { start: '22:00', end: '04:00' } } }, '/etc/fleetward');
    expect(config.updates).toMatchObject({ trustedRoot: '/etc/fleetward/root.json', hardware: 'sensor-v2', maintenanceWindow: { start: '22:00', end: '04:00' } });
    expect(config.firmware.securityVersion).toBe(5);
  });

  it.each([
    [{ updates: { trustedRoot: 'root.json' } }, 'updates.hardware'],
    [{ updates: { trustedRoot: 'root.json', hardware: 'a/b' } }, 'updates.hardware'],
    [{ updates: { maintenanceWindow: { start: '24:00', end: '04:00' } } }, 'updates.maintenanceWindow.start'],
    [{ updates: { maintenanceWindow: { start: '02:00', end: '2:00' } } }, 'updates.maintenanceWindow.end'],
    [{ updates: { maintenanceWindow: { start: '02:00', end: '02:00' } } }, 'updates.maintenanceWindow.end'],
    [{ updates: { minBatteryPercent: 101 } }, 'updates.minBatteryPercent'],
    [{ updates: { maxBootAttempts: 0 } }, 'updates.maxBootAttempts'],
    [{ updates: { faults: ['boot-failure'] } }, 'updates.faults'],
    [{ firmware: { securityVersion: -1 } }, 'firmware.securityVersion'],
  ])('refuses %j naming %s', (extra, key) => {
    try {
      parseAgentConfig({ ...base, ...extra }, '/etc/fleetward');
    } catch (error) {
      expect(error).toBeInstanceOf(FleetwardError);
      expect((error as FleetwardError).details.key).toBe(key);
      return;
    }
    throw new Error('expected a refusal');
  });
});

describe('maintenance window', () => {
  const at = (iso: string): Date => new Date(`2030-01-01T${iso}:00Z`);

  it.each([
    ['02:00', '04:00', '01:59', false],
    ['02:00', '04:00', '02:00', true],
    ['02:00', '04:00', '03:59', true],
    ['02:00', '04:00', '04:00', false],
    ['22:00', '04:00', '21:59', false],
    ['22:00', '04:00', '23:30', true],
    ['22:00', '04:00', '00:00', true],
    ['22:00', '04:00', '03:59', true],
    ['22:00', '04:00', '04:00', false],
  ])('%s–%s at %s: %s', (start, end, time, open) => {
    expect(inMaintenanceWindow({ start, end }, at(time))).toBe(open);
  });

  it('is always open without a window, and the next opening is inside it, at most a day ahead', () => {
    expect(inMaintenanceWindow(null, at('12:00'))).toBe(true);
    const clock = fc.integer({ min: 0, max: 23 * 60 + 59 }).map((m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);
    fc.assert(
      fc.property(clock, clock, fc.integer({ min: 0, max: 86_399_999 }), (start, end, ms) => {
        fc.pre(start !== end);
        const now = new Date(Date.UTC(2030, 0, 1) + ms);
        const opening = nextWindowOpening({ start, end }, now);
        expect(inMaintenanceWindow({ start, end }, opening)).toBe(true);
        expect(opening.getTime() - now.getTime()).toBeLessThan(86_400_000);
        expect(opening.getTime()).toBeGreaterThanOrEqual(now.getTime() - 60_000);
      }),
    );
  });
});

describe('install policy (signed fields only)', () => {
  const sha = 'a'.repeat(64);
  const release = (over: Partial<SignedRelease> = {}): SignedRelease => ({ target: 't', version: '1.4.2', securityVersion: 7, hardware: ['sensor-v2'], securityRelease: false, sha256: sha, length: 1_000, ...over });
  const device = { hardware: 'sensor-v2', floor: 5, maxArtifactBytes: 10_000 };
  const running = { version: '1.4.0', securityVersion: 5, sha256: 'b'.repeat(64) };

  it.each([
    ['ok/newer', release(), running, device, 'install'],
    ['ok/same version, other bytes', release({ version: '1.4.0' }), running, device, 'install'],
    ['ok/same version and bytes', release({ version: '1.4.0', sha256: running.sha256 }), running, device, 'up-to-date'],
    ['fail/other hardware', release({ hardware: ['gateway-v1'] }), running, device, 'incompatible'],
    ['fail/below the floor', release({ securityVersion: 4 }), running, device, 'rollback'],
    ['fail/older version', release({ version: '1.3.9' }), running, device, 'rollback'],
    ['fail/same version, lower security version', release({ version: '1.4.2', securityVersion: 6 }), { ...running, version: '1.4.2' }, { ...device, floor: 7 }, 'rollback'],
    ['fail/too large', release({ length: 10_001 }), running, device, 'too-large'],
    ['ok/running version not semver: security version decides', release(), { ...running, version: 'factory' }, device, 'install'],
  ] as const)('%s', (_name, r, run, dev, expected) => {
    const decision = decideInstall(r, run, dev);
    expect(decision.decision === 'rejected' ? decision.reason : decision.decision).toBe(expected);
  });

  it('reads only well-formed signed fields, and requires SHA-256', () => {
    const custom = { version: '1.4.2', securityVersion: 7, hardware: ['sensor-v2'], securityRelease: true };
    expect(signedRelease('t', custom, { sha256: sha }, 10)).toMatchObject({ version: '1.4.2', securityVersion: 7, securityRelease: true });
    expect(signedRelease('t', { ...custom, version: 'v-latest' }, { sha256: sha }, 10)).toMatch(/semantic version/);
    expect(signedRelease('t', { ...custom, securityVersion: '7' }, { sha256: sha }, 10)).toMatch(/security version/);
    expect(signedRelease('t', { ...custom, hardware: [] }, { sha256: sha }, 10)).toMatch(/hardware/);
    expect(signedRelease('t', custom, { sha512: 'c'.repeat(128) }, 10)).toMatch(/SHA-256/);
  });
});

describe('error mapping', () => {
  it.each([
    [new Error('timestamp was signed by 0/1 keys'), 'rejected', 'signature'],
    [new Error('Unable to load targets error Error: targets was signed by 0/1 keys'), 'rejected', 'signature'],
    [new Error('Final timestamp.json is expired'), 'rejected', 'signature'],
    [new Error('New timestamp version 1 is less than current version 2'), 'rejected', 'rollback'],
    [new Error('Expected hash abc but got def'), 'rejected', 'signature'],
    [new DownloadLengthMismatchError('Max length reached'), 'rejected', 'too-large'],
    [new DownloadHTTPError('nope', 404), 'rejected', 'not-found'],
    [new DownloadHTTPError('busy', 503), 'failed', 'download-failed'],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'failed', 'download-failed'],
  ])('%s → %s/%s', (error, state, reason) => {
    expect(classifyUpdateError(error)).toMatchObject({ state, reason });
  });

  it('retries network trouble and server errors only', () => {
    expect(isRetryable(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isRetryable(new DownloadHTTPError('x', 502))).toBe(true);
    expect(isRetryable(new DownloadHTTPError('x', 404))).toBe(false);
    expect(isRetryable(new Error('Expected hash a but got b'))).toBe(false);
  });
});

describe('slot state', () => {
  it('raises the floor only on confirmation, and a rollback leaves the active slot and floor as they were', () => {
    const start = initialSlotState({ version: '1.4.0', securityVersion: 5, sha256: null });
    const pending = { ...start, pending: { slot: 'b' as const, jobId: 'j1', target: 't', version: '1.4.2', securityVersion: 7, sha256: 'a'.repeat(64), bootAttempts: 1 } };
    expect(confirmed(pending)).toMatchObject({ active: 'b', floor: 7, pending: null, running: { version: '1.4.2' }, finished: [{ jobId: 'j1', state: 'succeeded' }] });
    expect(rolledBack(pending)).toMatchObject({ active: 'a', floor: 5, pending: null, running: { version: '1.4.0' }, finished: [{ jobId: 'j1', state: 'failed' }] });
    let s = start;
    for (let i = 0; i < 40; i++) s = withFinished(s, { jobId: `j${i}`, state: 'rejected' });
    expect(s.finished.length).toBe(32);
    expect(s.finished.at(-1)?.jobId).toBe('j39');
  });
});

describe('simulator', () => {
  it('takes a trusted root and hardware type, and spreads update faults over the faulty fleet', () => {
    expect(parseSimOptions(['--devices', '2', '--duration', '1', '--trusted-root', 'root.json', '--hardware', 'sensor-v2'])).toMatchObject({ trustedRoot: expect.stringMatching(/\/root\.json$/), hardware: 'sensor-v2' });
    expect(parseSimOptions(['--devices', '2', '--duration', '1'])).toMatchObject({ trustedRoot: null, hardware: 'sim-device' });
    const faults = Array.from({ length: 20 }, (_, i) => simulatedUpdateFaults(i)).flat();
    expect(faults.filter((f) => f === 'boot-failure').length).toBe(2);
    expect(faults.filter((f) => f === 'corrupt-download').length).toBe(2);
    expect(faults.filter((f) => f === 'stall-update').length).toBe(1);
  });
});
