/**
 * fast-check generators for policies, facts and requests over small alphabets, so that wildcards,
 * variables, collisions between thing names and topic levels, and `$` topics are frequent.
 */
import fc from 'fast-check';
import { parsePolicyDocument, POLICY_ACTIONS, type Conditions, type ConnectionFacts, type NamedPolicy, type PolicyAction, type Statement } from '../../src/access/policy/index.js';

/** Values that are also topic levels below, plus hostile ones (`+`, `#`, `a/b`, `$fw`, empty). */
const VALUES = ['a', 'b', 'dev-1', '+', '#', 'a/b', '$fw', ''] as const;
const LEVELS = ['a', 'b', 'dev-1', 'things'] as const;
const VARIABLE_LEVELS = ['${thing.name}', '${thing.attr.k}', '${cert.cn}', 'x${thing.name}'] as const;

const value = fc.constantFrom(...VALUES);

export const facts: fc.Arbitrary<ConnectionFacts> = fc.record(
  {
    thing: fc.record({ name: value, attributes: fc.option(fc.record({ k: value }, { requiredKeys: [] }), { nil: undefined }) }, { requiredKeys: ['name'] }),
    cert: fc.record({ cn: value, issuer: fc.constantFrom('CN=A', 'CN=B') }, { requiredKeys: [] }),
    sourceAddress: fc.constantFrom('10.0.0.1', '10.1.2.3', '192.168.1.5', '::ffff:10.0.0.1', '::ffff:a00:1', '2001:db8::1', '2001:db9::1', 'fe80::1%eth0', 'not-an-address'),
  },
  { requiredKeys: [] },
);

const level = fc.oneof({ weight: 4, arbitrary: fc.constantFrom<string>(...LEVELS, '+') }, { weight: 2, arbitrary: fc.constantFrom<string>(...VARIABLE_LEVELS) });
const firstLevel = fc.oneof(level, fc.constantFrom('$fw', '#'));

/** A topic pattern of one to three levels, maybe ending in `#`, plus the default policy's shapes. */
export const topicPattern: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(firstLevel, fc.array(level, { maxLength: 2 }), fc.boolean()).map(([first, rest, hash]) => (first === '#' ? '#' : [first, ...rest, ...(hash ? ['#'] : [])].join('/'))) },
  { weight: 1, arbitrary: fc.constantFrom('$fw/things/${thing.name}/#', 'things/${thing.name}/#', '$fw/things/+/a', '$fw/#', '${thing.attr.k}/#') },
  // `X` and `X/+/#` together, and only together, cover `X/#`: unions need these shapes.
  { weight: 2, arbitrary: fc.constantFrom('a', 'a/+/#', '+', '+/+/#', 'a/+', 'a/+/+/#', '${thing.name}', '${thing.name}/+/#') },
);

const clientResource = fc.constantFrom('client/*', 'client/a', 'client/b', 'client/${thing.name}', 'client/${cert.cn}', 'client/dev-${thing.attr.k}');

const conditions: fc.Arbitrary<Conditions> = fc
  .record(
    {
      sourceAddress: fc.uniqueArray(fc.constantFrom('10.0.0.0/8', '192.168.0.0/16', '2001:db8::/32', '0.0.0.0/0', '10.0.0.1/32'), { minLength: 1, maxLength: 2 }),
      thingAttributes: fc.record({ k: fc.constantFrom('a', '+', 'b') }),
      certIssuer: fc.uniqueArray(fc.constantFrom('CN=A', 'CN=C'), { minLength: 1, maxLength: 2 }),
    },
    { requiredKeys: [] },
  )
  .filter((c) => Object.keys(c).length > 0);

const statement: fc.Arbitrary<Statement> = fc
  .record({
    effect: fc.constantFrom<'allow' | 'deny'>('allow', 'allow', 'deny'),
    actions: fc.uniqueArray(fc.constantFrom(...POLICY_ACTIONS), { minLength: 1, maxLength: 3 }),
    topics: fc.uniqueArray(topicPattern, { minLength: 1, maxLength: 3 }),
    clients: fc.uniqueArray(clientResource, { minLength: 1, maxLength: 2 }),
    conditions: fc.option(conditions, { nil: undefined, freq: 3 }),
  })
  .map(({ effect, actions, topics, clients, conditions }) => {
    const resources = [...(actions.includes('mqtt:connect') ? clients : []), ...(actions.some((a) => a !== 'mqtt:connect') ? topics.map((t) => `topic/${t}`) : [])];
    return { effect, actions, resources, ...(conditions !== undefined && { conditions }) };
  });

export const policies: fc.Arbitrary<NamedPolicy[]> = fc.array(fc.array(statement, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }).map((lists) =>
  lists.map((statements, i) => ({ name: `p${i}`, document: parsePolicyDocument({ version: '2026-11', statements }) })),
);

const nameLevel = fc.constantFrom('a', 'b', 'dev-1', 'things', 'zz', 'x', '$fw', 'xa');
export const topicName: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.array(nameLevel, { minLength: 1, maxLength: 4 }).map((l) => l.join('/')) },
  { weight: 1, arbitrary: fc.constantFrom('$fw/things/a/x', '$fw/things/dev-1/jobs', 'things/a', '', 'a/+', 'a/#', 'x\u0000') },
);

export const topicFilter: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.array(fc.oneof(nameLevel, fc.constant('+')), { minLength: 1, maxLength: 3 }), fc.boolean()).map(([l, hash]) => [...l, ...(hash ? ['#'] : [])].join('/')) },
  { weight: 1, arbitrary: fc.constantFrom('#', '+', '$fw/#', '$fw/things/+/x', '$fw/things/a/#', '$share/g/things/a/#', '$share//a', 'a/#/b', 'a+', '') },
  { weight: 2, arbitrary: fc.constantFrom('a/#', '+/#', 'a/+/#', 'dev-1/#', '$share/g/a/#') },
);

export const clientId = fc.constantFrom('a', 'b', 'dev-1', '+', '*', 'x', '');

export const request: fc.Arbitrary<[PolicyAction, string]> = fc.oneof(
  fc.tuple(fc.constantFrom<PolicyAction>('mqtt:publish', 'mqtt:receive', 'mqtt:retain'), topicName),
  fc.tuple(fc.constant<PolicyAction>('mqtt:subscribe'), topicFilter),
  fc.tuple(fc.constant<PolicyAction>('mqtt:connect'), clientId),
);
