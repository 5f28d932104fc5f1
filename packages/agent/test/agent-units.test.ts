import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { FleetwardError, parseDeviceCommand } from '@fleetward/protocol';
import { CommandDispatcher } from '../src/commands/command-dispatcher.js';
import { parseAgentConfig } from '../src/config/agent-config.js';
import { renewalDue } from '../src/identity/certificate-renewal.js';
import { resourceMode } from '../src/faults/resource-mode.js';
import { fullJitterDelay } from '../src/session/backoff.js';
import { isIdentityRefusal, refusalResponse } from '../src/session/reason-codes.js';
import { TlsContextCache } from '../src/session/tls-options.js';
import { ReadingSchemas } from '../src/telemetry/reading-schemas.js';
import { testPki } from './updates/helpers/mtls-certs.js';

const base = { thing: 'dev-1', mqttUrl: 'mqtts://fleet.example:8883', caFile: 'ca.pem', stateDir: 'state' };

describe('agent configuration', () => {
  it('resolves relative paths against the file and fills safe defaults', () => {
    const config = parseAgentConfig(base, '/etc/fleetward');
    expect(config).toMatchObject({ caFile: '/etc/fleetward/ca.pem', stateDir: '/etc/fleetward/state', provisioning: null, renewAtRemaining: 1 / 3, queue: { maxEntries: 10_000, durability: 'fsync' }, reconnect: { initialMs: 1_000, maxMs: 300_000 } });
  });

  it.each([
    [{ ...base, mqttUrl: 'mqtt://fleet.example:1883' }, 'mqttUrl'],
    [{ ...base, mqttUrl: 'ws://fleet.example/mqtt' }, 'mqttUrl'],
    [{ ...base, thing: 'a/b' }, 'thing'],
    [{ ...base, thing: undefined }, 'thing'],
    [{ ...base, extra: 1 }, 'extra'],
    [{ ...base, queue: { maxBytes: 10 * 1024 ** 3 } }, 'queue.maxBytes'],
    [{ ...base, queue: { durability: 'never' } }, 'queue.durability'],
    [{ ...base, reconnect: { initialMs: 5_000, maxMs: 1_000 } }, 'reconnect.maxMs'],
    [{ ...base, renewAtRemaining: 1 }, 'renewAtRemaining'],
    [{ ...base, provisioning: { method: 'magic', template: 't' } }, 'provisioning.method'],
    [{ ...base, provisioning: { method: 'enrollment-token', template: 't', estUrl: 'http://x', tokenFile: 't' } }, 'provisioning.estUrl'],
    [{ ...base, provisioning: { method: 'claim-certificate', template: 't', claimCertFile: 'c', claimKeyFile: 'k', parameters: { n: 1 } } }, 'provisioning.parameters.n'],
    [{ ...base, telemetrySchemas: { env: 'not a schema' } }, 'telemetrySchemas.env'],
    [[], ''],
  ])('refuses %j naming %s', (value, key) => {
    try {
      parseAgentConfig(value, '/etc/fleetward');
    } catch (error) {
      expect(error).toBeInstanceOf(FleetwardError);
      expect((error as FleetwardError).code).toBe('FW_ERR_CONFIG_INVALID');
      if (key !== '') expect((error as FleetwardError).details.key).toBe(key);
      return;
    }
    throw new Error('expected a refusal');
  });
});

describe('backoff and reason codes', () => {
  it('full jitter stays within [0, min(cap, base · 2^attempt)] for any attempt and random value', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 0, max: 1_000_000 }), fc.nat(100), fc.double({ min: 0, max: 0.999_999, noNaN: true }), (initialMs, extra, attempt, r) => {
        const policy = { initialMs, maxMs: initialMs + extra };
        const delay = fullJitterDelay(policy, attempt, () => r);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(Math.min(policy.maxMs, initialMs * 2 ** attempt));
      }),
    );
  });

  it('slows down on quota and rate refusals, gives up on the rest, treats identity refusals as such', () => {
    expect([0x96, 0x97, 0x9f, 0x89, 0x88].map(refusalResponse)).toEqual(Array(5).fill('slow-down'));
    expect([0x87, 0x99, 0x90, 0x95, 0x80, 0x83].map(refusalResponse)).toEqual(Array(6).fill('give-up'));
    expect([0x86, 0x87, 0x8a, 0x8c].every(isIdentityRefusal)).toBe(true);
    expect([0x97, 0x88].some(isIdentityRefusal)).toBe(false);
  });

  it('low battery and memory pressure are decided from the readings alone', () => {
    const thresholds = { lowBatteryPercent: 15, memoryPressureBelow: 0.05 };
    expect(resourceMode({ batteryPercent: null, memoryAvailable: 0.5 }, thresholds)).toEqual({ lowBattery: false, memoryPressure: false });
    expect(resourceMode({ batteryPercent: 15, memoryAvailable: 0.01 }, thresholds)).toEqual({ lowBattery: true, memoryPressure: true });
  });
});

describe('commands', () => {
  it('the command parser refuses anything but a well-formed command with FW_ERR_VALIDATION only', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.json().map((j) => new TextEncoder().encode(j)), fc.record({ v: fc.constant(1), id: fc.string(), name: fc.string(), issuedAt: fc.string(), params: fc.anything() }).map((o) => new TextEncoder().encode(JSON.stringify(o)))), (payload) => {
        try {
          const command = parseDeviceCommand(payload);
          expect(command.v).toBe(1);
        } catch (error) {
          expect(error).toBeInstanceOf(FleetwardError);
          expect((error as FleetwardError).code).toBe('FW_ERR_VALIDATION');
        }
      }),
    );
  });

  it('no payload makes the dispatcher throw or run a handler it should not: one result per message, always', async () => {
    const dispatcher = new CommandDispatcher(new ReadingSchemas());
    let runs = 0;
    dispatcher.on('ping', () => {
      runs += 1;
      throw new Error('handler failure is reported, not thrown');
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.json().map((j) => new TextEncoder().encode(j))), async (payload) => {
        const result = await dispatcher.dispatch(payload);
        expect(['succeeded', 'failed', 'rejected']).toContain(result.outcome);
      }),
    );
    const ping = new TextEncoder().encode(JSON.stringify({ v: 1, id: 'p1', name: 'ping', issuedAt: '2026-12-04T00:00:00Z' }));
    expect(await dispatcher.dispatch(ping)).toMatchObject({ id: 'p1', outcome: 'failed', code: 'FW_ERR_INTERNAL' });
    expect(await dispatcher.dispatch(ping)).toMatchObject({ id: 'p1', outcome: 'rejected', code: 'FW_ERR_CONFLICT' });
    expect(runs).toBe(1);
  });
});

/** The FleetwardError code `f` throws, or null. */
function codeOf(f: () => unknown): string | null {
  try {
    f();
  } catch (error) {
    return error instanceof FleetwardError ? error.code : String(error);
  }
  return null;
}

describe('reading schemas', () => {
  const schemaText = JSON.stringify({ type: 'object', required: ['celsius'], properties: { celsius: { type: 'number', minimum: -40, maximum: 85 } }, additionalProperties: false });

  it('equal schemas declared again (a contract received on every connection) neither pile up in memory nor stop checking', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    new ReadingSchemas().declare('warm-up', JSON.parse(schemaText) as object);
    gc();
    const before = process.memoryUsage().heapUsed;
    let last = new ReadingSchemas();
    for (let i = 0; i < 3_000; i++) {
      last = new ReadingSchemas();
      last.declare('contract env@1', JSON.parse(schemaText) as object);
    }
    gc();
    // Compiled afresh each time, Ajv kept every copy: about 14 MB for 3,000.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(4 * 1024 * 1024);
    expect(() => last.check('contract env@1', { celsius: 21.5 })).not.toThrow();
    expect(codeOf(() => last.check('contract env@1', { celsius: 999 }))).toBe('FW_ERR_PAYLOAD_REJECTED');
    expect(() => last.check('contract env@1', { celsius: 20, extra: 1 })).toThrow(/must NOT have additional properties/);
  });

  it('keeps each name to its own schema when several are compiled', () => {
    const schemas = new ReadingSchemas();
    schemas.declare('a', { type: 'object', required: ['x'], properties: { x: { type: 'number' } } });
    schemas.declare('b', { type: 'object', required: ['y'], properties: { y: { type: 'number' } } });
    expect(() => schemas.check('a', { x: 1 })).not.toThrow();
    expect(() => schemas.check('b', { x: 1 })).toThrow(/must have required property 'y'/);
    expect(codeOf(() => schemas.declare('c', { type: 'nonsense' }))).toBe('FW_ERR_CONFIG_INVALID');
  });
});

describe('version', () => {
  it('the inventory reports the version package.json declares', async () => {
    const { AGENT_VERSION } = await import('../src/version.js');
    const { readFile } = await import('node:fs/promises');
    expect(AGENT_VERSION).toBe((JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version);
  });
});

describe('renewal schedule', () => {
  it('renews once less than the configured share of the lifetime is left, and always after expiry', () => {
    const certificate = { validFrom: 'Dec  1 00:00:00 2026 GMT', validTo: 'Dec 31 00:00:00 2026 GMT' };
    expect(renewalDue(certificate, new Date('2026-12-10T00:00:00Z'), 1 / 3)).toBe(false);
    expect(renewalDue(certificate, new Date('2026-12-21T00:00:01Z'), 1 / 3)).toBe(true);
    expect(renewalDue(certificate, new Date('2027-01-02T00:00:00Z'), 1 / 3)).toBe(true);
    expect(renewalDue(certificate, new Date('2026-12-21T00:00:01Z'), 0.1)).toBe(false);
  });
});

describe('TLS context', () => {
  it('is built once per identity, and again when the certificate, the key or the CA changes', async () => {
    const pki = await testPki();
    const issued = await pki.client('dev-1');
    const key = { pem: issued.keyPem };
    const identity = { key, certPem: issued.certPem, caPem: pki.caPem };
    const cache = new TlsContextCache();
    const first = cache.contextFor(identity);
    // Each connection attempt reads the identity afresh: the same credentials reuse the context.
    expect(cache.contextFor({ ...identity })).toBe(first);
    const renewed = await pki.client('dev-1');
    const second = cache.contextFor({ key: { pem: renewed.keyPem }, certPem: renewed.certPem, caPem: pki.caPem });
    expect(second).not.toBe(first);
    expect(cache.contextFor({ key: { pem: renewed.keyPem }, certPem: renewed.certPem, caPem: (await testPki('Rotated CA')).caPem })).not.toBe(second);
  });

  it('offers the last session ticket of the same identity only: after a renewal the next handshake is a full one', async () => {
    const pki = await testPki();
    const issued = await pki.client('dev-1');
    const identity = { key: { pem: issued.keyPem }, certPem: issued.certPem, caPem: pki.caPem };
    const cache = new TlsContextCache();
    const context = cache.contextFor(identity);
    expect(cache.ticketFor(context)).toBeUndefined();
    cache.keepTicket(context, Buffer.from('ticket-1'));
    expect(cache.ticketFor(cache.contextFor({ ...identity }))).toEqual(Buffer.from('ticket-1'));
    // A resumed session would present the certificate it was made with: a renewed one must not resume it.
    const renewed = await pki.client('dev-1');
    const next = cache.contextFor({ key: { pem: renewed.keyPem }, certPem: renewed.certPem, caPem: pki.caPem });
    expect(cache.ticketFor(next)).toBeUndefined();
    expect(cache.ticketFor(context)).toBeUndefined();
    // A ticket arriving late on a connection of the old identity is not kept.
    cache.keepTicket(context, Buffer.from('late'));
    expect(cache.ticketFor(next)).toBeUndefined();
  });

  it('refuses to build from a certificate that does not match the key', async () => {
    const pki = await testPki();
    const [mine, other] = [await pki.client('dev-1'), await pki.client('dev-2')];
    expect(() => new TlsContextCache().contextFor({ key: { pem: mine.keyPem }, certPem: other.certPem, caPem: pki.caPem })).toThrow(/key values mismatch/);
  });
});
