import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_JSON_LIMITS, type ParsedJson } from '../../src/data/bounded-json.js';
import { CompiledContract, isViolation } from '../../src/data/compiled-contract.js';
import { parseContract } from '../../src/data/contract.js';
import { ContractCatalog, evaluatePublish, type PublishInput } from '../../src/data/evaluate-publish.js';
import { FieldCrypto, openFieldEnvelope } from '../../src/data/field-crypto.js';
import { thrown } from '../helpers/refusals.js';

const recipient = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const recipientPem = recipient.publicKey.export({ format: 'pem', type: 'spki' }) as string;
const crypto = new FieldCrypto({ pseudonym: randomBytes(32), vault: randomBytes(32) });

function meterContract(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'meter-env',
    version: 1,
    topic: 'things/${thing.name}/telemetry/env',
    thingType: 'meter',
    retention: 'P30D',
    schema: {
      type: 'object',
      required: ['temp'],
      properties: {
        temp: { type: 'number', minimum: -40, maximum: 85 },
        mac: { type: 'string', maxLength: 17 },
        owner: { type: 'string', maxLength: 64 },
        location: { type: 'object', properties: { lat: { type: 'number', minimum: -90, maximum: 90 }, lon: { type: 'number', minimum: -180, maximum: 180 } } },
        at: { type: 'string', format: 'date-time' },
        note: { type: 'string', maxLength: 200 },
        serial: { type: 'string', maxLength: 32 },
        debug: { type: 'string', maxLength: 100 },
        mode: { type: 'string', enum: ['eco', 'boost'] },
        readings: { type: 'array', items: { type: 'integer' }, maxItems: 4 },
      },
    },
    fields: {
      temp: { class: 'internal', purposes: ['monitoring'] },
      mac: { class: 'personal', purposes: ['maintenance'], transform: 'pseudonymize' },
      owner: { class: 'personal', purposes: ['billing'], retention: 'P365D', transform: 'tokenize' },
      location: { class: 'personal', purposes: ['maintenance'], retention: 7, transform: { kind: 'round', decimals: 2 } },
      at: { class: 'internal', purposes: ['monitoring'], transform: { kind: 'time-bucket', unit: 'hour' } },
      note: { class: 'internal', purposes: ['maintenance'], transform: { kind: 'truncate', length: 5 } },
      serial: { class: 'secret', purposes: ['warranty'], transform: { kind: 'encrypt', recipientKey: recipientPem } },
      debug: { class: 'internal', purposes: ['monitoring'], transform: 'drop' },
      mode: { class: 'public', purposes: ['monitoring'], transform: 'keep' },
      readings: { class: 'internal', purposes: ['monitoring'], transform: 'keep' },
    },
    ...overrides,
  };
}

const compiled = new CompiledContract(parseContract(meterContract()), crypto);
const message = { temp: 21.5, mac: 'AA:BB:CC:DD:EE:FF', owner: 'alice@example.com', location: { lat: 48.858_37, lon: 2.294_48 }, at: '2026-11-25T13:47:12Z', note: 'hello world', serial: 'SN-123', debug: 'x', mode: 'eco', readings: [1, 2] };

describe('data contracts', () => {
  it('ok/minimizes a message: each transform, storage groups by retention, vault values', () => {
    const result = compiled.minimize(JSON.parse(JSON.stringify(message)) as ParsedJson, 'meter-1');
    if (isViolation(result)) throw new Error(result.detail);
    const { payload } = result;
    expect(payload.temp).toBe(21.5);
    expect(payload.mac).toBe(crypto.pseudonym('default', 'AA:BB:CC:DD:EE:FF'));
    expect(payload.owner).toBe(crypto.tokenId('meter-1', 'meter-env', 'owner', 'alice@example.com'));
    expect(payload.location).toEqual({ lat: 48.86, lon: 2.29 });
    expect(payload.at).toBe('2026-11-25T13:00:00Z');
    expect(payload.note).toBe('hello');
    expect(openFieldEnvelope(payload.serial as string, recipient.privateKey, 'meter-env/serial').toString()).toBe('"SN-123"');
    expect(payload).not.toHaveProperty('debug');
    expect(JSON.stringify(payload)).not.toMatch(/alice|AA:BB|SN-123|48\.858/);
    expect(result.tokens).toEqual([{ token: payload.owner, field: 'owner', value: 'alice@example.com', retentionSeconds: 365 * 86_400 }]);
    // One row per retention, counted as its highest class; each field keeps its own class.
    const groups = Object.fromEntries(result.groups.map((g) => [`${g.classification}/${g.retentionSeconds / 86_400}`, Object.keys(g.fields).sort()]));
    expect(groups).toEqual({ 'secret/30': ['at', 'mac', 'mode', 'note', 'readings', 'serial', 'temp'], 'personal/365': ['owner'], 'personal/7': ['location'] });
    expect(JSON.parse(result.groups[0]?.classesJson ?? '')).toEqual({ temp: 'internal', mac: 'personal', at: 'internal', note: 'internal', serial: 'secret', mode: 'public', readings: 'internal' });
    // What is stored is exactly what the row holds, and subscribers get exactly the payload.
    for (const g of result.groups) expect(JSON.parse(g.fieldsJson)).toEqual(g.fields);
    expect(JSON.parse(result.payloadJson)).toEqual(payload);
  });

  it('a row missing optional fields lists the classes of the fields it has, nothing else', () => {
    const result = compiled.minimize({ temp: 3, owner: 'bob@example.com' }, 'meter-1');
    if (isViolation(result)) throw new Error(result.detail);
    expect(result.groups.map((g) => [JSON.parse(g.fieldsJson) as unknown, JSON.parse(g.classesJson) as unknown])).toEqual([
      [{ temp: 3 }, { temp: 'internal' }],
      [{ owner: crypto.tokenId('meter-1', 'meter-env', 'owner', 'bob@example.com') }, { owner: 'personal' }],
    ]);
  });

  const refusals: readonly [string, unknown, string, string][] = [
    ['fail/unknown field', { ...message, extra: 1 }, 'unknown-field', '$.extra'],
    ['fail/unknown nested field', { ...message, location: { lat: 1, lon: 2, alt: 3 } }, 'unknown-field', '$.location.alt'],
    ['fail/required field missing', { mac: 'x' }, 'schema', '$.temp'],
    ['fail/wrong type', { temp: '21' }, 'schema', '$.temp'],
    ['fail/below minimum', { temp: -41 }, 'schema', '$.temp'],
    ['fail/above maximum', { temp: 86 }, 'value-too-large', '$.temp'],
    ['fail/string too long', { temp: 1, owner: 'x'.repeat(65) }, 'value-too-large', '$.owner'],
    ['fail/too many items', { temp: 1, readings: [1, 2, 3, 4, 5] }, 'value-too-large', '$.readings'],
    ['fail/item of the wrong type', { temp: 1, readings: [1, 2.5] }, 'schema', '$.readings[1]'],
    ['fail/not in enum', { temp: 1, mode: 'turbo' }, 'schema', '$.mode'],
    ['fail/not a date-time', { temp: 1, at: 'yesterday' }, 'schema', '$.at'],
    ['fail/not an object', [1, 2], 'schema', '$'],
    ['fail/a "__proto__" field is just unknown', JSON.parse('{"temp":1,"__proto__":{"temp":2}}'), 'unknown-field', '$.__proto__'],
    ['fail/an inherited member name is unknown', { temp: 1, toString: 'x' }, 'unknown-field', '$.toString'],
  ];
  for (const [name, value, reason, path] of refusals) {
    it(name, () => {
      const result = compiled.minimize(JSON.parse(JSON.stringify(value)) as ParsedJson, 'meter-1');
      expect(result).toMatchObject({ reason, path });
    });
  }

  it('ok/validator properties: every conforming message is accepted; an extra field or a value out of range never is', () => {
    const conforming = fc.record(
      {
        temp: fc.double({ min: -40, max: 85, noNaN: true }),
        mac: fc.string({ maxLength: 17 }),
        owner: fc.string({ maxLength: 64 }),
        location: fc.record({ lat: fc.double({ min: -90, max: 90, noNaN: true }), lon: fc.double({ min: -180, max: 180, noNaN: true }) }, { requiredKeys: [] }),
        at: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
        note: fc.string({ maxLength: 200 }),
        mode: fc.constantFrom('eco', 'boost'),
        readings: fc.array(fc.integer(), { maxLength: 4 }),
      },
      { requiredKeys: ['temp'] },
    );
    fc.assert(
      fc.property(conforming, fc.stringMatching(/^[a-z]{1,8}$/), fc.double({ min: 85.001, max: 1e9, noNaN: true }), (value, extra, hot) => {
        const parsed = JSON.parse(JSON.stringify(value)) as Record<string, ParsedJson>;
        expect(isViolation(compiled.minimize(parsed, 'm'))).toBe(false);
        if (!(extra in parsed) && !['temp', 'mac', 'owner', 'location', 'at', 'note', 'mode', 'readings', 'serial', 'debug'].includes(extra)) {
          expect(compiled.minimize({ ...parsed, [extra]: 1 }, 'm')).toMatchObject({ reason: 'unknown-field' });
        }
        expect(compiled.minimize({ ...parsed, temp: hot }, 'm')).toMatchObject({ reason: 'value-too-large', path: '$.temp' });
      }),
      { numRuns: 200 },
    );
  });

  it('ok/stored rows properties: each row is its fields and classes as JSON; with one retention and top-level fields, the row is the payload', () => {
    const oneRetention = new CompiledContract(parseContract({ ...meterContract(), fields: Object.fromEntries(Object.entries(meterContract().fields as Record<string, object>).map(([path, spec]) => [path, { ...spec, retention: 'P30D' }])) }), crypto);
    const conforming = fc.record(
      { temp: fc.double({ min: -40, max: 85, noNaN: true }), mac: fc.string({ maxLength: 17 }), note: fc.string({ maxLength: 200 }), mode: fc.constantFrom('eco', 'boost'), readings: fc.array(fc.integer(), { maxLength: 4 }), debug: fc.string({ maxLength: 8 }) },
      { requiredKeys: ['temp'] },
    );
    fc.assert(
      fc.property(conforming, (value) => {
        const parsed = JSON.parse(JSON.stringify(value)) as Record<string, ParsedJson>;
        for (const contract of [compiled, oneRetention]) {
          const result = contract.minimize(parsed, 'm');
          if (isViolation(result)) throw new Error(result.detail);
          for (const g of result.groups) {
            expect(JSON.parse(g.fieldsJson)).toEqual(g.fields);
            expect(Object.keys(JSON.parse(g.classesJson) as object)).toEqual(Object.keys(g.fields));
          }
        }
        const single = oneRetention.minimize(parsed, 'm');
        if (isViolation(single)) throw new Error(single.detail);
        expect(single.groups.map((g) => g.fieldsJson)).toEqual([single.payloadJson]);
      }),
      { numRuns: 200 },
    );
  });

  const invalid: readonly [string, Record<string, unknown>, string][] = [
    ['fail/unknown class', { fields: { ...(meterContract().fields as object), temp: { class: 'confidential', purposes: ['monitoring'] } } }, 'fields.temp.class'],
    ['fail/retention missing (no default)', { retention: undefined }, 'fields.temp.retention'],
    ['fail/retention not a duration', { retention: 'forever' }, 'retention'],
    ['fail/retention zero days', { retention: 0 }, 'retention'],
    ['fail/a field left unclassified', { fields: { temp: { class: 'internal', purposes: ['monitoring'] } } }, 'fields.mac'],
    ['fail/a classified field not in the schema', { fields: { ...(meterContract().fields as object), pressure: { class: 'internal', purposes: ['x'] } } }, 'fields.pressure'],
    ['fail/no purposes', { fields: { ...(meterContract().fields as object), temp: { class: 'internal', purposes: [] } } }, 'fields.temp.purposes'],
    ['fail/unsupported schema keyword', { schema: { type: 'object', properties: { temp: { type: 'string', pattern: '^a+$' } } }, fields: { temp: { class: 'public', purposes: ['x'] } } }, 'schema.properties.temp.pattern'],
    ['fail/additionalProperties true', { schema: { type: 'object', additionalProperties: true, properties: {} } }, 'schema.additionalProperties'],
    ['fail/array without maxItems', { schema: { type: 'object', properties: { a: { type: 'array', items: { type: 'integer' } } } }, fields: { a: { class: 'public', purposes: ['x'] } } }, 'schema.properties.a.maxItems'],
    ['fail/required names an undeclared field', { schema: { type: 'object', required: ['b'], properties: { a: { type: 'integer' } } }, fields: { a: { class: 'public', purposes: ['x'] } } }, 'schema.required'],
    ['fail/schema without type', { schema: { properties: {} } }, 'schema.type'],
    ['fail/transform not applicable', { fields: { ...(meterContract().fields as object), mac: { class: 'personal', purposes: ['x'], transform: { kind: 'round', decimals: 2 } } } }, 'fields.mac.transform'],
    ['fail/unknown transform', { fields: { ...(meterContract().fields as object), mac: { class: 'personal', purposes: ['x'], transform: 'hash' } } }, 'fields.mac.transform'],
    ['fail/secret kept in clear', { fields: { ...(meterContract().fields as object), serial: { class: 'secret', purposes: ['x'] } } }, 'fields.serial.transform'],
    ['fail/encryption to a bad key', { fields: { ...(meterContract().fields as object), serial: { class: 'secret', purposes: ['x'], transform: { kind: 'encrypt', recipientKey: 'nope' } } } }, 'fields.serial.transform.recipientKey'],
    ['fail/topic outside the thing namespace', { topic: 'telemetry/env' }, 'topic'],
    ['fail/reserved topic', { topic: '$fw/things/${thing.name}/x' }, 'topic'],
    ['fail/wildcard inside a level', { topic: 'things/${thing.name}/tele+' }, 'topic'],
    ['fail/unknown top-level key', { owner: 'me' }, 'owner'],
    ['fail/version not a whole number', { version: 1.5 }, 'version'],
    ['fail/bad name', { name: 'Meter Env' }, 'name'],
    ['fail/a field named like an object member', { schema: { type: 'object', properties: { constructor: { type: 'integer' } } }, fields: { constructor: { class: 'public', purposes: ['x'] } } }, 'schema.properties.constructor'],
  ];
  for (const [name, overrides, path] of invalid) {
    it(name, () => {
      const document = JSON.parse(JSON.stringify(meterContract(overrides))) as unknown;
      expect(thrown(() => parseContract(document))).toMatchObject({ code: 'FW_ERR_DATA_CONTRACT_INVALID', details: expect.objectContaining({ path }) });
    });
  }

  it('ok/topic filters bind the thing and follow MQTT wildcards', () => {
    const of = (topic: string) => new CompiledContract(parseContract(meterContract({ topic })), crypto);
    const exact = of('things/${thing.name}/telemetry/env');
    expect(exact.matches('m1', 'things/m1/telemetry/env')).toBe(true);
    expect(exact.matches('m1', 'things/m2/telemetry/env')).toBe(false);
    expect(exact.matches('m1', 'things/m1/telemetry/env/x')).toBe(false);
    expect(exact.matches('m1', 'things/m1/telemetry')).toBe(false);
    const plus = of('things/${thing.name}/+/env');
    expect(plus.matches('m1', 'things/m1/anything/env')).toBe(true);
    expect(plus.matches('m1', 'things/m1//env')).toBe(true);
    const hash = of('things/${thing.name}/#');
    expect(hash.matches('m1', 'things/m1')).toBe(true);
    expect(hash.matches('m1', 'things/m1/a/b/c')).toBe(true);
    expect(hash.matches('m1', 'things/m10/a')).toBe(false);
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9-]{1,12}$/), fc.array(fc.stringMatching(/^[a-z]{0,5}$/), { maxLength: 4 }), (thing, rest) => {
        const topic = ['things', thing, ...rest].join('/');
        expect(hash.matches(thing, topic)).toBe(true);
        expect(hash.matches(`${thing}x`, topic)).toBe(false);
      }),
    );
  });

  describe('evaluating a publish', () => {
    const generic = parseContract(meterContract({ name: 'generic', thingType: null, topic: 'things/${thing.name}/#', fields: { ...(meterContract().fields as object), temp: { class: 'public', purposes: ['monitoring'] } } }));
    const catalog = new ContractCatalog([new CompiledContract(generic, crypto), compiled]);
    const input = (topic: string, payload: string, thingType: string | null = 'meter'): PublishInput => ({ thing: 'm1', thingType, topic, payload: Buffer.from(payload), receivedAtMs: Date.parse('2026-11-25T12:00:00Z') });
    const options = { unmatched: 'refuse', limits: DEFAULT_JSON_LIMITS } as const;

    it('ok/the most specific contract of the thing\'s type wins', () => {
      expect(evaluatePublish(catalog, input('things/m1/telemetry/env', '{"temp":1}'), options)).toMatchObject({ verdict: 'accept', contract: { contract: { name: 'meter-env' } } });
      expect(evaluatePublish(catalog, input('things/m1/telemetry/env', '{"temp":1}', 'other'), options)).toMatchObject({ verdict: 'accept', contract: { contract: { name: 'generic' } } });
    });

    it('fail/no contract: refused with 0x87 by default, passed unclassified when configured', () => {
      expect(evaluatePublish(catalog, input('other/m1', '{}'), options)).toMatchObject({ verdict: 'refuse', code: 'FW_ERR_DATA_NO_CONTRACT', reasonCode: 0x87, reason: 'no-contract' });
      expect(evaluatePublish(catalog, input('other/m1', 'not json'), { ...options, unmatched: 'pass-unclassified' })).toEqual({ verdict: 'unclassified' });
    });

    it('fail/bad payloads are refused with 0x99 and FW_ERR_PAYLOAD_REJECTED, naming the reason', () => {
      for (const [payload, reason] of [
        ['temp=1', 'not-json'],
        ['{"temp":1,"temp":2}', 'duplicate-key'],
        [`{"temp":1,"note":${'['.repeat(40)}${']'.repeat(40)}}`, 'too-deep'],
        ['{"temp":1,"extra":true}', 'unknown-field'],
        ['{"temp":"hot"}', 'schema'],
      ] as const) {
        expect(evaluatePublish(catalog, input('things/m1/telemetry/env', payload), options)).toMatchObject({ verdict: 'refuse', code: 'FW_ERR_PAYLOAD_REJECTED', reasonCode: 0x99, reason });
      }
    });
  });

  it('ok/the complete example in docs/rule-09-data.md is a valid contract and minimizes as documented', () => {
    const doc = readFileSync(new URL('../../../../docs/rule-09-data.md', import.meta.url), 'utf8');
    const blocks = [...doc.matchAll(/```json contract\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    expect(blocks.length).toBeGreaterThan(0);
    const example = parseContract(JSON.parse(blocks[0] as string));
    const published = [...doc.matchAll(/```json published\n([\s\S]*?)```/g)].map((m) => m[1] as string)[0] as string;
    const delivered = JSON.parse([...doc.matchAll(/```json delivered\n([\s\S]*?)```/g)].map((m) => m[1] as string)[0] as string) as Record<string, unknown>;
    const result = new CompiledContract(example, crypto).minimize(JSON.parse(published) as ParsedJson, 'meter-0042');
    if (isViolation(result)) throw new Error(result.detail);
    // Keyed values differ per installation: the documented ones are placeholders of the same shape.
    const shape = (value: unknown) => JSON.stringify(value).replace(/"(ps|tk)_[A-Za-z0-9_-]{22}"/g, '"$1_…"').replace(/"fwenc1\.[^"]+"/g, '"fwenc1…"');
    expect(shape(result.payload)).toBe(shape(delivered));
  });
});
