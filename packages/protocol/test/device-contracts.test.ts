import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FleetwardError, parseDeviceContracts, parseReservedRequest, topicFilterMatches, Topics } from '../src/index.js';

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

const CONTRACT = {
  name: 'env',
  version: 3,
  topic: 'things/pump-1/telemetry/env',
  schema: { type: 'object', properties: { temp: { type: 'number' } } },
  fields: [
    { path: 'temp', transform: { kind: 'round', decimals: 1 } },
    { path: 'location.lat', transform: { kind: 'bucket', size: 0.5 } },
    { path: 'debug', transform: { kind: 'drop' } },
    { path: 'at', transform: { kind: 'time-bucket', seconds: 3600 } },
    { path: 'note', transform: { kind: 'truncate', length: 8 } },
    { path: 'mac', transform: { kind: 'keep' } },
  ],
};
const ANSWER = { thing: 'pump-1', contracts: [CONTRACT] };

/** The field a refusal names, or 'accepted'. Anything but a FleetwardError FW_ERR_VALIDATION is a bug. */
function outcome(payload: Uint8Array): string {
  try {
    parseDeviceContracts(payload);
    return 'accepted';
  } catch (error) {
    if (error instanceof FleetwardError && error.code === 'FW_ERR_VALIDATION') return typeof error.details.field === 'string' ? error.details.field : '';
    throw error;
  }
}

const withContract = (patch: Record<string, unknown>) => ({ ...ANSWER, contracts: [{ ...CONTRACT, ...patch }] });
const withTransform = (transform: unknown) => withContract({ fields: [{ path: 'temp', transform }] });

describe('the contracts request topic', () => {
  it('is parsed for every thing name, and its answers are not requests', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9:_-]{1,128}$/), (thing) => {
        expect(parseReservedRequest(Topics.contractsRequest(thing))).toEqual({ kind: 'contracts', thing });
        expect(parseReservedRequest(Topics.contracts(thing))).toBeNull();
        expect(parseReservedRequest(Topics.contractsRejected(thing))).toBeNull();
      }),
    );
    for (const topic of ['$fw/things/+/contracts/get', '$fw/things/#', '$fw/things/a/contracts/get/x', '$fw/things//contracts/get', 'fw/things/a/contracts/get']) expect(parseReservedRequest(topic), topic).toBeNull();
  });
});

describe('parseDeviceContracts', () => {
  it('accepts the device view and returns exactly its fields', () => {
    expect(parseDeviceContracts(encode(ANSWER))).toEqual(ANSWER);
    expect(parseDeviceContracts(encode({ thing: 'pump-1', contracts: [] }))).toEqual({ thing: 'pump-1', contracts: [] });
  });

  it('refuses each bad input naming the field', () => {
    const cases: [unknown, string][] = [
      [{ ...ANSWER, admin: true }, 'admin'],
      [{ contracts: [] }, 'thing'],
      [{ thing: 'a/b', contracts: [] }, 'thing'],
      [{ thing: 'pump-1' }, 'contracts'],
      [withContract({ name: 'Env!' }), 'contracts[0].name'],
      [withContract({ version: 0 }), 'contracts[0].version'],
      [withContract({ version: 1.5 }), 'contracts[0].version'],
      [withContract({ topic: '$fw/things/pump-1/metrics' }), 'contracts[0].topic'],
      [withContract({ topic: 'things/#/x' }), 'contracts[0].topic'],
      [withContract({ topic: 'things/a+/x' }), 'contracts[0].topic'],
      [withContract({ schema: [] }), 'contracts[0].schema'],
      [withContract({ schema: undefined }), 'contracts[0].schema'],
      [withContract({ extra: 1 }), 'contracts[0].extra'],
      [withContract({ fields: [{ path: '__proto__', transform: { kind: 'drop' } }] }), 'contracts[0].fields[0].path'],
      [withContract({ fields: [{ path: 'a..b', transform: { kind: 'drop' } }] }), 'contracts[0].fields[0].path'],
      // What needs a server key never reaches a device: it is `keep` in the device view.
      [withTransform({ kind: 'pseudonymize', domain: 'x' }), 'contracts[0].fields[0].transform.kind'],
      [withTransform({ kind: 'encrypt' }), 'contracts[0].fields[0].transform.kind'],
      [withTransform({ kind: 'drop', decimals: 1 }), 'contracts[0].fields[0].transform.decimals'],
      [withTransform({ kind: 'round', decimals: 11 }), 'contracts[0].fields[0].transform.decimals'],
      [withTransform({ kind: 'round' }), 'contracts[0].fields[0].transform.decimals'],
      [withTransform({ kind: 'bucket', size: 0 }), 'contracts[0].fields[0].transform.size'],
      [withTransform({ kind: 'bucket', size: -1 }), 'contracts[0].fields[0].transform.size'],
      [withTransform({ kind: 'time-bucket', seconds: 0 }), 'contracts[0].fields[0].transform.seconds'],
      [withTransform({ kind: 'truncate', length: 5000 }), 'contracts[0].fields[0].transform.length'],
      [[ANSWER], ''],
    ];
    for (const [input, field] of cases) expect(outcome(encode(input)), JSON.stringify(input)).toBe(field);
    expect(outcome(new TextEncoder().encode('{"thing":'))).toBe('');
    expect(outcome(new Uint8Array([0x7b, 0xff, 0x7d]))).toBe('');
    expect(outcome(new Uint8Array(1024 * 1024 + 1).fill(0x20))).toBe('');
  });

  it('only ever answers a value or FW_ERR_VALIDATION, whatever the bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => void outcome(bytes)), { numRuns: 500 });
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => void outcome(encode(value))), { numRuns: 500 });
    // Mutations of a valid answer: every field replaced by an arbitrary JSON value.
    fc.assert(
      fc.property(fc.constantFrom('thing', 'contracts', 'name', 'version', 'topic', 'schema', 'fields', 'path', 'transform', 'kind', 'decimals'), fc.jsonValue({ maxDepth: 3 }), (key, value) => {
        const text = JSON.stringify(ANSWER).replace(new RegExp(`"${key}":`), `"${key}":${JSON.stringify(value)},"_":`);
        void outcome(new TextEncoder().encode(text));
      }),
      { numRuns: 500 },
    );
  });
});

describe('topicFilterMatches', () => {
  it('follows MQTT 4.7 wildcards', () => {
    expect(topicFilterMatches('things/a/telemetry/+', 'things/a/telemetry/env')).toBe(true);
    expect(topicFilterMatches('things/a/telemetry/+', 'things/a/telemetry')).toBe(false);
    expect(topicFilterMatches('things/a/#', 'things/a')).toBe(true);
    expect(topicFilterMatches('things/a/#', 'things/b/x')).toBe(false);
    expect(topicFilterMatches('things/a/x', 'things/a/x/y')).toBe(false);
    fc.assert(fc.property(fc.array(fc.stringMatching(/^[a-z]{0,4}$/), { minLength: 1, maxLength: 6 }), (levels) => {
      expect(topicFilterMatches(levels.join('/'), levels.join('/'))).toBe(true);
    }));
  });
});
