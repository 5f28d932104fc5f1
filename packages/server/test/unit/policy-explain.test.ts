import { describe, expect, it } from 'vitest';
import {
  compilePolicies,
  DEFAULT_DEVICE_POLICY,
  describeDecision,
  effectivePolicies,
  explain,
  parsePolicyDocument,
  type Attachment,
  type NamedPolicy,
  type Statement,
} from '../../src/access/policy/index.js';

const policy = (name: string, statements: Statement[]): NamedPolicy => ({ name, document: parsePolicyDocument({ version: '2026-11', statements }) });

describe('effective policies and inheritance', () => {
  const attachments: Attachment[] = [
    { policy: 'cert-only', target: { kind: 'certificate', name: '0a1b' } },
    { policy: 'root-deny', target: { kind: 'group', name: 'fleet' } },
    { policy: 'default', target: { kind: 'group', name: 'berlin' } },
    { policy: 'default', target: { kind: 'thing', name: 'sensor-1' } },
    { policy: 'other', target: { kind: 'thing', name: 'sensor-2' } },
    { policy: 'sibling', target: { kind: 'group', name: 'munich' } },
  ];

  it('orders thing, groups (as given: the thing\'s groups and their ancestors), certificate; each policy once', () => {
    expect(effectivePolicies(attachments, 'sensor-1', ['fleet', 'berlin'], '0a1b')).toEqual([
      { policy: 'default', via: { kind: 'thing', name: 'sensor-1' } },
      { policy: 'root-deny', via: { kind: 'group', name: 'fleet' } },
      { policy: 'cert-only', via: { kind: 'certificate', name: '0a1b' } },
    ]);
    expect(effectivePolicies(attachments, null, [], null)).toEqual([]);
    expect(effectivePolicies(attachments, 'sensor-3', ['fleet', 'munich'], null).map((p) => p.policy)).toEqual(['root-deny', 'sibling']);
  });

  it('a deny attached to an ancestor group overrides an allow attached to the thing', () => {
    const library = new Map<string, NamedPolicy>([
      ['default', { name: 'default', document: DEFAULT_DEVICE_POLICY }],
      ['root-deny', policy('root-deny', [{ effect: 'deny', actions: ['mqtt:publish'], resources: ['topic/things/+/firmware/#'] }])],
      ['cert-only', policy('cert-only', [{ effect: 'allow', actions: ['mqtt:retain'], resources: ['topic/things/${thing.name}/state'] }])],
    ]);
    const names = effectivePolicies(attachments, 'sensor-1', ['fleet', 'berlin'], '0a1b').map((p) => p.policy);
    const compiled = compilePolicies(names.map((n) => library.get(n) as NamedPolicy), { thing: { name: 'sensor-1', groups: ['fleet', 'berlin'] }, cert: { serial: '0a1b' } });
    expect(compiled.decide('mqtt:publish', 'things/sensor-1/firmware/v2')).toMatchObject({ reason: 'denied', statement: { policy: 'root-deny' } });
    expect(compiled.decidePublish('things/sensor-1/state', true)).toMatchObject({ allowed: true, statement: { policy: 'cert-only' } });
  });
});

describe('simulator explanation', () => {
  const policies = [
    { name: 'default', document: DEFAULT_DEVICE_POLICY },
    policy('ops', [
      { sid: 'no-admin', effect: 'deny', actions: ['mqtt:publish'], resources: ['topic/things/${thing.name}/admin/#'] },
      { sid: 'office', effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/office/${thing.attr.floor}/#'], conditions: { sourceAddress: ['192.0.2.0/24'] } },
    ]),
  ];
  const facts = { thing: { name: 'sensor-1' }, sourceAddress: '198.51.100.7' };

  it('names the deciding statement and shows how every statement naming the action relates', () => {
    const explanation = explain(policies, facts, 'mqtt:publish', 'things/sensor-1/admin/reboot');
    expect(explanation.decision).toEqual({ allowed: false, reason: 'denied', statement: { policy: 'ops', index: 0, sid: 'no-admin' } });
    expect(describeDecision(explanation.decision)).toBe('denied by policy ops statement 0 (no-admin) (an explicit deny always wins)');
    expect(explanation.statements).toEqual([
      { statement: { policy: 'default', index: 1, sid: 'own-namespaces' }, effect: 'allow', outcome: 'matches', resources: ['topic/things/sensor-1/#', 'topic/$fw/things/sensor-1/#'], unmetConditions: [], unresolvedVariables: [] },
      { statement: { policy: 'ops', index: 0, sid: 'no-admin' }, effect: 'deny', outcome: 'matches', resources: ['topic/things/sensor-1/admin/#'], unmetConditions: [], unresolvedVariables: [] },
      { statement: { policy: 'ops', index: 1, sid: 'office' }, effect: 'allow', outcome: 'conditions-not-met', resources: ['topic/office/${thing.attr.floor}/#'], unmetConditions: ['sourceAddress'], unresolvedVariables: ['thing.attr.floor'] },
    ]);
  });

  it('reports partial overlap of a subscribe filter, and default deny in words', () => {
    const explanation = explain(policies, facts, 'mqtt:subscribe', 'things/+/telemetry');
    expect(explanation.decision).toEqual({ allowed: false, reason: 'default-deny' });
    expect(describeDecision(explanation.decision)).toBe('denied: no statement allows (default deny)');
    expect(explanation.statements.map((s) => s.outcome)).toEqual(['overlaps']);
    expect(explain(policies, facts, 'mqtt:connect', 'sensor-1').statements.map((s) => [s.statement.sid, s.outcome])).toEqual([['connect-as-self', 'matches']]);
    expect(describeDecision(explain(policies, facts, 'mqtt:subscribe', '$fw/things/x/#').decision)).toMatch(/reserved/);
  });

  it('agrees with the compiled policy for every request it is asked', () => {
    const compiled = compilePolicies(policies, facts);
    for (const [action, resource] of [['mqtt:publish', 'things/sensor-1/x'], ['mqtt:subscribe', '#'], ['mqtt:connect', 'x'], ['mqtt:receive', '$fw/things/sensor-1/jobs/notify']] as const) {
      expect(explain(policies, facts, action, resource).decision).toEqual(compiled.decide(action, resource));
    }
  });
});
