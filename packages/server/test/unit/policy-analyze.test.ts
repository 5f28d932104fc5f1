import { describe, expect, it } from 'vitest';
import { analyzePolicies, DEFAULT_DEVICE_POLICY, parsePolicyDocument, type AnalyzerInput, type Finding, type NamedPolicy, type Statement } from '../../src/access/policy/index.js';

const policy = (name: string, statements: Statement[], createdAt = '2026-01-01T00:00:00Z') => ({ name, createdAt, document: parsePolicyDocument({ version: '2026-11', statements }) });
const NOW = new Date('2026-11-25T12:00:00Z');
const daysAgo = (days: number) => new Date(NOW.getTime() - days * 86_400_000).toISOString();

const input: AnalyzerInput = {
  policies: [
    { name: 'default', document: DEFAULT_DEVICE_POLICY, createdAt: '2026-01-01T00:00:00Z' },
    policy('wide', [{ effect: 'allow', actions: ['mqtt:publish', 'mqtt:subscribe'], resources: ['topic/#', 'topic/+/status'] }]),
    policy('gateway', [
      { sid: 'children', effect: 'allow', actions: ['mqtt:publish', 'mqtt:receive'], resources: ['topic/things/+/cmd', 'topic/$fw/things/+/jobs/notify', 'topic/things/${thing.name}/#'] },
      { sid: 'connect', effect: 'allow', actions: ['mqtt:connect'], resources: ['client/*', 'client/gateway-1'] },
    ]),
    policy('zones', [
      { effect: 'allow', actions: ['mqtt:subscribe'], resources: ['topic/zones/${thing.attr.zone}/#'] },
      { effect: 'deny', actions: ['mqtt:publish'], resources: ['topic/quarantine/${thing.attr.q}/#'] },
    ]),
    policy('orphan', [{ effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/things/${thing.name}/x'] }]),
    policy('fresh', [{ effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/things/${thing.name}/y'] }], daysAgo(3)),
  ],
  attachments: [
    { policy: 'default', target: { kind: 'group', name: 'fleet' } },
    { policy: 'zones', target: { kind: 'group', name: 'fleet' } },
    { policy: 'wide', target: { kind: 'certificate', name: 'beef' } },
    { policy: 'gateway', target: { kind: 'thing', name: 'gateway-1' } },
    { policy: 'fresh', target: { kind: 'thing', name: 'sensor-1' } },
  ],
  things: [
    { facts: { thing: { name: 'sensor-1', groups: ['fleet'], attributes: { zone: 'z1', q: 'q1' } } } },
    { facts: { thing: { name: 'sensor-2', groups: ['fleet'], attributes: { zone: 'z2', q: 'q2' } } }, certificates: ['beef'] },
    { facts: { thing: { name: 'sensor-3', groups: ['fleet'], attributes: {} } } },
    { facts: { thing: { name: 'gateway-1' } } },
  ],
  usage: [
    { policy: 'default', statement: 0, action: 'mqtt:connect', lastUsedAt: daysAgo(1) },
    { policy: 'default', statement: 1, action: 'mqtt:publish', lastUsedAt: daysAgo(2) },
    { policy: 'default', statement: 1, action: 'mqtt:publish', lastUsedAt: daysAgo(90) },
    { policy: 'default', statement: 1, action: 'mqtt:subscribe', lastUsedAt: daysAgo(100) },
    { policy: 'gateway', statement: 0, action: 'mqtt:publish', lastUsedAt: daysAgo(5) },
    { policy: 'gateway', statement: 0, action: 'mqtt:receive', lastUsedAt: 'not a date' },
    { policy: 'gateway', statement: 1, action: 'mqtt:connect', lastUsedAt: daysAgo(5) },
    { policy: 'wide', statement: 0, action: 'mqtt:publish', lastUsedAt: daysAgo(5) },
    { policy: 'wide', statement: 0, action: 'mqtt:subscribe', lastUsedAt: daysAgo(5) },
    { policy: 'zones', statement: 0, action: 'mqtt:subscribe', lastUsedAt: daysAgo(5) },
  ],
  now: NOW,
  unusedDays: 30,
};

const summary = (f: Finding) => [f.code, f.severity, f.policy, f.statement?.index ?? null, f.resource, f.things.join(',')];

describe('policy analyzer', () => {
  const findings = analyzePolicies(input);

  it('finds every least-privilege violation, with stable codes, sorted by severity', () => {
    expect(findings.map(summary)).toEqual([
      ['cross-thing-access', 'high', 'gateway', 0, 'topic/things/+/cmd', 'gateway-1'],
      ['foreign-client-id', 'high', 'gateway', 1, 'client/*', 'gateway-1'],
      ['wildcard-publish', 'high', 'wide', 0, 'topic/#', ''],
      ['wildcard-subscribe', 'high', 'wide', 0, 'topic/#', ''],
      ['cross-thing-access', 'medium', 'gateway', 0, 'topic/$fw/things/+/jobs/notify', 'gateway-1'],
      ['wildcard-publish', 'medium', 'wide', 0, 'topic/+/status', ''],
      ['wildcard-subscribe', 'medium', 'wide', 0, 'topic/+/status', ''],
      ['unresolved-variable', 'medium', 'zones', 1, 'topic/quarantine/${thing.attr.q}/#', 'sensor-3'],
      ['unused-action', 'low', 'default', 1, null, ''],
      ['unused-action', 'low', 'default', 1, null, ''],
      ['unused-action', 'low', 'gateway', 0, null, ''],
      ['unattached-policy', 'low', 'orphan', null, null, ''],
      ['unresolved-variable', 'low', 'zones', 0, 'topic/zones/${thing.attr.zone}/#', 'sensor-3'],
    ]);
  });

  it('explains each finding in words, naming the policy, statement, action and things', () => {
    const byCode = (code: string) => findings.filter((f) => f.code === code);
    expect(byCode('cross-thing-access')[0]?.message).toBe("policy gateway statement 0 (children): thing gateway-1: reaches other things' topics through topic/things/+/cmd");
    expect(byCode('unused-action').map((f) => [f.action, f.message.includes('never used') ? 'never' : 'stale'])).toEqual([
      ['mqtt:receive', 'never'],
      ['mqtt:subscribe', 'stale'],
      ['mqtt:receive', 'never'],
    ]);
    expect(byCode('foreign-client-id')).toHaveLength(1);
    expect(byCode('unattached-policy')[0]?.message).toMatch(/orphan is attached to nothing/);
  });

  it('does not flag a thing for its own namespace, nor a client id that is its own name', () => {
    // Created yesterday: too young for unused-action.
    const own = analyzePolicies({ ...input, policies: [{ name: 'default', document: DEFAULT_DEVICE_POLICY, createdAt: daysAgo(1) }], usage: [] });
    expect(own).toEqual([]);
  });

  it('groups a finding across things and caps the sample', () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ facts: { thing: { name: `t-${String(i).padStart(2, '0')}`, groups: ['fleet'] } } }));
    const shared: NamedPolicy = { name: 'shared', document: parsePolicyDocument({ version: '2026-11', statements: [{ effect: 'allow', actions: ['mqtt:subscribe'], resources: ['topic/things/t-00/#'] }] }) };
    const result = analyzePolicies({ policies: [shared], attachments: [{ policy: 'shared', target: { kind: 'group', name: 'fleet' } }], things: many, usage: [], now: NOW, unusedDays: 30 });
    const cross = result.find((f) => f.code === 'cross-thing-access');
    expect(cross?.thingCount).toBe(29);
    expect(cross?.things).toHaveLength(20);
    expect(cross?.things[0]).toBe('t-01');
  });
});
