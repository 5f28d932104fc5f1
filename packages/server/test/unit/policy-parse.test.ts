import { FleetwardError } from '@fleetward/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DEVICE_POLICY, parsePolicyDocument, parsePolicyJson, POLICY_LIMITS, serializePolicy, type PolicyDocument } from '../../src/access/policy/index.js';
import { policies } from './policy-arbitraries.js';

const ok = (statements: unknown[], extra: Record<string, unknown> = {}) => ({ version: '2026-11', statements, ...extra });
const allowPublish = (resources: unknown, extra: Record<string, unknown> = {}) => ({ effect: 'allow', actions: ['mqtt:publish'], resources, ...extra });

function refusal(input: unknown): FleetwardError {
  try {
    parsePolicyDocument(input);
  } catch (error) {
    if (error instanceof FleetwardError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('policy parser', () => {
  it('accepts the default device policy and a document using every feature', () => {
    expect(parsePolicyJson(serializePolicy(DEFAULT_DEVICE_POLICY))).toEqual(DEFAULT_DEVICE_POLICY);
    const full = ok(
      [
        { sid: 'connect', effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}', 'client/*'] },
        {
          sid: 'site-telemetry',
          effect: 'allow',
          actions: ['mqtt:publish', 'mqtt:retain', 'mqtt:subscribe', 'mqtt:receive'],
          resources: ['topic/sites/${thing.attr.site}/+/dev-${thing.name}/#', 'topic/$fw/things/${thing.name}/#', 'topic/a//b', 'topic/types/${thing.type}/${cert.cn}/${cert.serial}'],
          conditions: { sourceAddress: ['192.0.2.0/24', '2001:db8::/32'], thingAttributes: { site: 'berlin' }, certIssuer: ['CN=Fleetward Issuing CA'] },
        },
        { effect: 'deny', actions: ['mqtt:publish'], resources: ['topic/things/${thing.name}/admin/#'] },
      ],
      { description: 'everything' },
    );
    const parsed = parsePolicyDocument(full);
    expect(parsed).toEqual(full);
    expect(Object.isFrozen(parsed.statements[1]?.conditions?.sourceAddress)).toBe(true);
  });

  it.each([
    ['not an object', [], ''],
    ['unknown top-level field', { ...ok([allowPublish(['topic/a'])]), Statement: [] }, '/Statement'],
    ['missing version', { statements: [allowPublish(['topic/a'])] }, ''],
    ['unknown version', { ...ok([allowPublish(['topic/a'])]), version: '2012-10-17' }, '/version'],
    ['no statements', ok([]), '/statements'],
    ['too many statements', ok(Array.from({ length: POLICY_LIMITS.maxStatements + 1 }, () => allowPublish(['topic/a']))), '/statements'],
    ['misspelt conditions', ok([allowPublish(['topic/a'], { condition: {} })]), '/statements/0/condition'],
    ['bad effect', ok([{ ...allowPublish(['topic/a']), effect: 'Allow' }]), '/statements/0/effect'],
    ['unknown action', ok([{ ...allowPublish(['topic/a']), actions: ['mqtt:publish', 'iot:Publish'] }]), '/statements/0/actions/1'],
    ['repeated action', ok([{ ...allowPublish(['topic/a']), actions: ['mqtt:publish', 'mqtt:publish'] }]), '/statements/0/actions/1'],
    ['no resources', ok([allowPublish([])]), '/statements/0/resources'],
    ['too many resources', ok([allowPublish(Array.from({ length: POLICY_LIMITS.maxResourcesPerStatement + 1 }, (_, i) => `topic/${i}`))]), '/statements/0/resources'],
    ['resource without kind', ok([allowPublish(['things/a'])]), '/statements/0/resources/0'],
    ['# not last', ok([allowPublish(['topic/a', 'topic/a/#/b'])]), '/statements/0/resources/1'],
    ['# inside a level', ok([allowPublish(['topic/a/b#'])]), '/statements/0/resources/0'],
    ['+ inside a level', ok([allowPublish(['topic/a+/b'])]), '/statements/0/resources/0'],
    ['+ next to a variable', ok([allowPublish(['topic/+${thing.name}'])]), '/statements/0/resources/0'],
    ['empty pattern', ok([allowPublish(['topic/'])]), '/statements/0/resources/0'],
    ['NUL in a pattern', ok([allowPublish(['topic/a\u0000'])]), '/statements/0/resources/0'],
    ['too long', ok([allowPublish([`topic/${'a'.repeat(POLICY_LIMITS.maxResourceLength)}`])]), '/statements/0/resources/0'],
    ['too deep', ok([allowPublish([`topic/${Array(POLICY_LIMITS.maxPatternLevels + 1).fill('a').join('/')}`])]), '/statements/0/resources/0'],
    ['unknown variable', ok([allowPublish(['topic/${iot:ClientId}'])]), '/statements/0/resources/0'],
    ['client id variable (not a variable)', ok([allowPublish(['topic/${client.id}'])]), '/statements/0/resources/0'],
    ['bad attribute key', ok([allowPublish(['topic/${thing.attr._x}'])]), '/statements/0/resources/0'],
    ['unterminated variable', ok([allowPublish(['topic/${thing.name'])]), '/statements/0/resources/0'],
    ['client id pattern', ok([{ effect: 'allow', actions: ['mqtt:connect'], resources: ['client/sensor-*'] }]), '/statements/0/resources/0'],
    ['empty client id', ok([{ effect: 'allow', actions: ['mqtt:connect'], resources: ['client/'] }]), '/statements/0/resources/0'],
    ['connect without a client resource', ok([{ effect: 'allow', actions: ['mqtt:connect'], resources: ['topic/a'] }]), '/statements/0/actions/0'],
    ['client resource without connect', ok([allowPublish(['topic/a', 'client/a'])]), '/statements/0/resources/1'],
    ['repeated resource', ok([allowPublish(['topic/a', 'topic/a'])]), '/statements/0/resources/1'],
    ['bad sid', ok([allowPublish(['topic/a'], { sid: 'has space' })]), '/statements/0/sid'],
    ['repeated sid', ok([allowPublish(['topic/a'], { sid: 's' }), allowPublish(['topic/b'], { sid: 's' })]), '/statements/1/sid'],
    ['empty conditions', ok([allowPublish(['topic/a'], { conditions: {} })]), '/statements/0/conditions'],
    ['unknown condition', ok([allowPublish(['topic/a'], { conditions: { sourceIp: ['10.0.0.0/8'] } })]), '/statements/0/conditions/sourceIp'],
    ['variable in a condition', ok([allowPublish(['topic/a'], { conditions: { thingAttributes: { site: 5 } } })]), '/statements/0/conditions/thingAttributes/site'],
    ['CIDR without prefix', ok([allowPublish(['topic/a'], { conditions: { sourceAddress: ['10.0.0.1'] } })]), '/statements/0/conditions/sourceAddress/0'],
    ['CIDR with host bits', ok([allowPublish(['topic/a'], { conditions: { sourceAddress: ['10.0.0.0/8', '10.0.0.1/8'] } })]), '/statements/0/conditions/sourceAddress/1'],
    ['IPv4-mapped CIDR', ok([allowPublish(['topic/a'], { conditions: { sourceAddress: ['::ffff:10.0.0.0/104'] } })]), '/statements/0/conditions/sourceAddress/0'],
    ['CIDR prefix too long', ok([allowPublish(['topic/a'], { conditions: { sourceAddress: ['2001:db8::/129'] } })]), '/statements/0/conditions/sourceAddress/0'],
    ['bad attribute key in a condition', ok([allowPublish(['topic/a'], { conditions: { thingAttributes: { 'a b': 'x' } } })]), '/statements/0/conditions/thingAttributes/a b'],
    ['empty issuer', ok([allowPublish(['topic/a'], { conditions: { certIssuer: [''] } })]), '/statements/0/conditions/certIssuer/0'],
    ['__proto__ field', JSON.parse('{"version":"2026-11","statements":[{"effect":"allow","actions":["mqtt:publish"],"resources":["topic/a"],"__proto__":{"x":1}}]}') as unknown, '/statements/0/__proto__'],
  ])('refuses %s with FW_ERR_VALIDATION at %j', (_name, input, path) => {
    const error = refusal(input);
    expect(error.code).toBe('FW_ERR_VALIDATION');
    expect(error.details.path).toBe(path);
  });

  it('refuses text that is not JSON, or too long, without throwing anything else', () => {
    expect(() => parsePolicyJson('{')).toThrow(FleetwardError);
    expect(() => parsePolicyJson(`${' '.repeat(POLICY_LIMITS.maxDocumentLength)}{}`)).toThrow(FleetwardError);
    expect(() => parsePolicyJson('[]')).toThrow(FleetwardError);
  });

  const documents: fc.Arbitrary<PolicyDocument> = fc
    .tuple(policies, fc.option(fc.string({ maxLength: 40 }), { nil: undefined }), fc.boolean())
    .map(([named, description, sids]) => ({
      version: '2026-11' as const,
      ...(description !== undefined && { description }),
      statements: named.flatMap((p) => p.document.statements).slice(0, POLICY_LIMITS.maxStatements).map((s, i) => (sids ? { sid: `s-${i}`, ...s } : s)),
    }));

  it('round-trips every valid document through serialize and parse (property)', () => {
    fc.assert(
      fc.property(documents, (document) => {
        const parsed = parsePolicyDocument(document);
        const text = serializePolicy(parsed);
        expect(parsePolicyJson(text)).toEqual(parsed);
        expect(serializePolicy(parsePolicyJson(text), 2)).toBe(serializePolicy(parsed, 2));
      }),
      { numRuns: 300 },
    );
  });

  /** Replaces, deletes or adds a value somewhere in a JSON tree, chosen by index among its containers. */
  function mutate(root: unknown, target: number, kind: number, replacement: unknown, key: string): unknown {
    const copy = structuredClone<unknown>(root);
    const containers: (Record<string, unknown> | unknown[])[] = [];
    const walk = (node: unknown) => {
      if (typeof node === 'object' && node !== null) {
        containers.push(node as Record<string, unknown>);
        Object.values(node).forEach(walk);
      }
    };
    walk(copy);
    const container = containers[target % containers.length] as Record<string, unknown>;
    const keys = Object.keys(container);
    // Arrays get index keys only (setting `length` to a string would throw in the test, not the parser).
    const added = Array.isArray(container) && !/^\d{1,3}$/.test(key) ? String(keys.length) : key;
    const existing = keys[target % Math.max(1, keys.length)] ?? added;
    if (kind === 0) container[existing] = replacement;
    else if (kind === 1) delete container[existing];
    else container[added] = replacement;
    return copy;
  }

  it('never crashes on mutated documents: the result parses or the error is FW_ERR_VALIDATION with a path (property)', () => {
    const hostileString = fc.oneof(fc.string(), fc.constantFrom('topic/#/a', 'topic/${', 'topic/${thing.attr.}', 'client/*', 'topic/+', '${thing.name}', 'mqtt:connect', '10.0.0.0/8', '::/0', 'deny', 'constructor', '__proto__'));
    const replacement = fc.oneof(fc.jsonValue({ maxDepth: 2 }), hostileString, fc.array(hostileString, { maxLength: 3 }));
    fc.assert(
      fc.property(documents, fc.nat(), fc.nat(2), replacement, fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('conditions', 'sid', '0', 'length')), (document, target, kind, value, key) => {
        const mutated = mutate(JSON.parse(serializePolicy(document)), target, kind, value, key);
        try {
          const parsed = parsePolicyDocument(mutated);
          expect(parsePolicyJson(serializePolicy(parsed))).toEqual(parsed);
        } catch (error) {
          expect(error).toBeInstanceOf(FleetwardError);
          expect((error as FleetwardError).code).toBe('FW_ERR_VALIDATION');
          expect(typeof (error as FleetwardError).details.path).toBe('string');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('never crashes on arbitrary text (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        try {
          parsePolicyJson(text);
        } catch (error) {
          expect(error).toBeInstanceOf(FleetwardError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
