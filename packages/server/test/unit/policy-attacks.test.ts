import { describe, expect, it } from 'vitest';
import { compilePolicies, DEFAULT_DEVICE_POLICY, parsePolicyDocument, type CompiledPolicy, type ConnectionFacts, type NamedPolicy, type Statement } from '../../src/access/policy/index.js';

const policy = (name: string, statements: Statement[]): NamedPolicy => ({ name, document: parsePolicyDocument({ version: '2026-11', statements }) });
const DEFAULT: NamedPolicy = { name: 'default', document: DEFAULT_DEVICE_POLICY };
const sensor1: ConnectionFacts = { thing: { name: 'sensor-1', attributes: { site: 'berlin' } }, cert: { cn: 'sensor-1', serial: '0a1b', issuer: 'CN=Fleetward Issuing CA' }, sourceAddress: '10.1.2.3', clientId: 'sensor-1' };

function device(facts: ConnectionFacts = sensor1, policies: NamedPolicy[] = [DEFAULT]): CompiledPolicy {
  return compilePolicies(policies, facts);
}

describe('the default device policy, from the attacker side', () => {
  const compiled = device();

  it('ok/ a device reaches its own namespaces', () => {
    expect(compiled.allows('mqtt:connect', 'sensor-1')).toBe(true);
    for (const topic of ['things/sensor-1/telemetry', 'things/sensor-1', '$fw/things/sensor-1/metrics', '$fw/things/sensor-1/jobs/j1/update']) {
      expect(compiled.allows('mqtt:publish', topic), topic).toBe(true);
      expect(compiled.allows('mqtt:receive', topic), topic).toBe(true);
    }
    for (const filter of ['things/sensor-1/#', 'things/sensor-1/+/x', '$fw/things/sensor-1/jobs/notify', '$fw/things/sensor-1/#', '$share/workers/things/sensor-1/cmd']) {
      expect(compiled.allows('mqtt:subscribe', filter), filter).toBe(true);
    }
  });

  it("fail/ must not reach another device's topics", () => {
    for (const topic of ['things/sensor-2/telemetry', 'things/sensor-10/x', 'things', 'sensor-1/things']) {
      expect(compiled.decide('mqtt:publish', topic), topic).toEqual({ allowed: false, reason: 'default-deny' });
      expect(compiled.allows('mqtt:receive', topic), topic).toBe(false);
    }
    for (const filter of ['things/sensor-2/#', 'things/+/telemetry', 'things/#', '#', '+/#', '+/sensor-1/#', '$share/g/things/#']) {
      expect(compiled.allows('mqtt:subscribe', filter), filter).toBe(false);
    }
  });

  it("fail/ must not reach another device's reserved $fw topics, whatever the policies say", () => {
    const wide = device(sensor1, [policy('wide', [{ effect: 'allow', actions: ['mqtt:publish', 'mqtt:subscribe', 'mqtt:receive'], resources: ['topic/$fw/#'] }])]);
    expect(wide.decide('mqtt:publish', '$fw/things/sensor-2/metrics')).toEqual({ allowed: false, reason: 'reserved-topic' });
    expect(wide.decide('mqtt:receive', '$fw/things/sensor-2/jobs/notify')).toEqual({ allowed: false, reason: 'reserved-topic' });
    for (const filter of ['$fw/#', '$fw/things/#', '$fw/things/+/jobs/notify', '$fw/+/sensor-2/x', '$fw/things/sensor-2']) {
      expect(wide.decide('mqtt:subscribe', filter), filter).toEqual({ allowed: false, reason: 'reserved-topic' });
    }
    expect(wide.allows('mqtt:subscribe', '$fw/things/sensor-1/#')).toBe(true);
    expect(wide.allows('mqtt:subscribe', '$fw/provisioning/+/accepted')).toBe(true);
    // Without a thing (a claim certificate), every thing's reserved namespace is foreign.
    expect(device({ cert: { cn: 'claim' } }, [policy('wide', [{ effect: 'allow', actions: ['mqtt:subscribe'], resources: ['topic/$fw/#'] }])]).decide('mqtt:subscribe', '$fw/things/a/#').reason).toBe('reserved-topic');
  });

  it('fail/ must not connect with another client id, and must not retain', () => {
    for (const id of ['sensor-2', '+', '*', '#', 'sensor-1 ', '']) expect(compiled.allows('mqtt:connect', id), id).toBe(false);
    expect(compiled.decidePublish('things/sensor-1/state', false).allowed).toBe(true);
    expect(compiled.decidePublish('things/sensor-1/state', true)).toEqual({ allowed: false, reason: 'default-deny' });
  });

  it('fail/ wildcards at the first level never match $ topics', () => {
    const hashes = device(sensor1, [policy('p', [{ effect: 'allow', actions: ['mqtt:publish', 'mqtt:subscribe'], resources: ['topic/#', 'topic/+/things/+/jobs'] }])]);
    expect(hashes.allows('mqtt:publish', 'anything/at/all')).toBe(true);
    expect(hashes.allows('mqtt:publish', '$fw/things/sensor-1/metrics')).toBe(false);
    expect(hashes.allows('mqtt:publish', '$SYS/broker/load')).toBe(false);
    expect(hashes.allows('mqtt:subscribe', '$fw/things/sensor-1/jobs')).toBe(false);
    expect(hashes.allows('mqtt:subscribe', '#')).toBe(true);
  });

  it('fail/ malformed requests are refused, never matched', () => {
    expect(compiled.decide('mqtt:publish', 'things/sensor-1/+').reason).toBe('malformed-request');
    expect(compiled.decide('mqtt:publish', '').reason).toBe('malformed-request');
    expect(compiled.decide('mqtt:receive', 'things/sensor-1/\u0000').reason).toBe('malformed-request');
    expect(compiled.decide('mqtt:subscribe', 'things/sensor-1/#/x').reason).toBe('malformed-request');
    expect(compiled.decide('mqtt:subscribe', 'things/sensor-1/a#').reason).toBe('malformed-request');
    expect(compiled.decide('mqtt:subscribe', '$share//things/sensor-1/#').reason).toBe('malformed-request');
    expect(compiled.decide('mqtt:subscribe', '$share/g+/things/sensor-1/#').reason).toBe('malformed-request');
    expect(compiled.decide('mqtt:connect', '').reason).toBe('malformed-request');
  });
});

describe('substituted values are literal text', () => {
  const byCn = policy('by-cn', [
    { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${cert.cn}'] },
    { effect: 'allow', actions: ['mqtt:publish', 'mqtt:subscribe'], resources: ['topic/things/${cert.cn}/#', 'topic/${thing.attr.zone}/status', 'topic/sites/${thing.attr.site}'] },
  ]);

  it.each(['+', '#', 'a/b', 'x/#', '', 'x\u0000'])('fail/ a certificate CN of %j cannot widen a pattern', (cn) => {
    const compiled = device({ thing: { name: 'dev', attributes: { zone: '#', site: 'a/b' } }, cert: { cn } }, [byCn]);
    for (const filter of ['things/#', 'things/+/x', 'things/other/#', '#', '+/status', 'sites/+', 'sites/#']) expect(compiled.allows('mqtt:subscribe', filter), filter).toBe(false);
    for (const topic of ['things/other/x', 'things/+/x', 'zz/status', 'sites/a/b', 'sites/a']) expect(compiled.allows('mqtt:publish', topic), topic).toBe(false);
    expect(compiled.allows('mqtt:connect', 'other')).toBe(false);
  });

  it('fail/ a thing named + or # (a third-party CA may sign anything) gets nothing from ${thing.name}', () => {
    for (const name of ['+', '#']) {
      const compiled = device({ thing: { name } }, [DEFAULT]);
      expect(compiled.allows('mqtt:subscribe', 'things/+/#')).toBe(false);
      expect(compiled.allows('mqtt:subscribe', 'things/#')).toBe(false);
      expect(compiled.allows('mqtt:publish', 'things/sensor-2/x')).toBe(false);
      expect(compiled.decide('mqtt:subscribe', '$fw/things/+/jobs/notify').reason).toBe('reserved-topic');
    }
  });

  it('fail/ a value cannot move a pattern into the $ namespaces', () => {
    const compiled = device({ thing: { name: 'dev', attributes: { zone: '$fw' } } }, [policy('p', [{ effect: 'allow', actions: ['mqtt:subscribe'], resources: ['topic/${thing.attr.zone}/#'] }])]);
    expect(compiled.allows('mqtt:subscribe', '$fw/provisioning/#')).toBe(false);
    expect(compiled.allows('mqtt:subscribe', '$fw/things/dev/#')).toBe(false);
  });

  it('ok/ a CN of * is an exact client id, not a wildcard', () => {
    const compiled = device({ cert: { cn: '*' } }, [byCn]);
    expect(compiled.allows('mqtt:connect', '*')).toBe(true);
    expect(compiled.allows('mqtt:connect', 'sensor-2')).toBe(false);
  });
});

describe('missing values never widen access', () => {
  const scoped = policy('scoped', [
    { effect: 'allow', actions: ['mqtt:publish', 'mqtt:subscribe'], resources: ['topic/sites/${thing.attr.site}/#', 'topic/things/${thing.name}/#'] },
    { effect: 'deny', actions: ['mqtt:publish'], resources: ['topic/quarantine/${thing.attr.zone}/#'] },
  ]);

  it('ok/ an allow resource with a missing variable matches nothing; the statement\'s other resources still apply', () => {
    const compiled = device({ thing: { name: 'dev', attributes: { zone: 'z' } } }, [scoped]);
    expect(compiled.allows('mqtt:subscribe', 'sites/+/#')).toBe(false);
    expect(compiled.allows('mqtt:subscribe', 'sites/#')).toBe(false);
    expect(compiled.allows('mqtt:publish', 'things/dev/x')).toBe(true);
  });

  it('fail/ a deny resource with a missing variable denies every topic for its actions (fail closed)', () => {
    const compiled = device({ thing: { name: 'dev', attributes: { site: 'berlin' } } }, [scoped, DEFAULT]);
    expect(compiled.decide('mqtt:publish', 'things/dev/x')).toEqual({ allowed: false, reason: 'denied', statement: { policy: 'scoped', index: 1, sid: null } });
    expect(compiled.decide('mqtt:publish', '$fw/things/dev/metrics').reason).toBe('denied');
    // Other actions are untouched.
    expect(compiled.allows('mqtt:subscribe', 'sites/berlin/#')).toBe(true);
  });
});

describe('evaluation order', () => {
  it('default deny: no policies, nothing allowed', () => {
    const compiled = device(sensor1, []);
    expect(compiled.decide('mqtt:connect', 'sensor-1')).toEqual({ allowed: false, reason: 'default-deny' });
    expect(compiled.decide('mqtt:subscribe', 'things/sensor-1/#')).toEqual({ allowed: false, reason: 'default-deny' });
  });

  it('an explicit deny wins over any allow, wherever it comes from', () => {
    const admin = policy('no-admin', [{ sid: 'no-admin', effect: 'deny', actions: ['mqtt:publish', 'mqtt:subscribe'], resources: ['topic/things/${thing.name}/admin/#'] }]);
    const compiled = device(sensor1, [DEFAULT, admin]);
    expect(compiled.decide('mqtt:publish', 'things/sensor-1/admin/reboot')).toEqual({ allowed: false, reason: 'denied', statement: { policy: 'no-admin', index: 0, sid: 'no-admin' } });
    expect(compiled.allows('mqtt:publish', 'things/sensor-1/data')).toBe(true);
    // A filter that could receive a denied topic is denied as a whole ...
    expect(compiled.decide('mqtt:subscribe', 'things/sensor-1/#').reason).toBe('denied');
    expect(compiled.decide('mqtt:subscribe', 'things/sensor-1/+/reboot').reason).toBe('denied');
    // ... one that cannot is allowed.
    expect(compiled.allows('mqtt:subscribe', 'things/sensor-1/data/#')).toBe(true);
    expect(compiled.allows('mqtt:subscribe', 'things/sensor-1/administrator')).toBe(true);
    // `admin/#` also matches its parent level `admin` (MQTT 5.0 §4.7.1.2).
    expect(compiled.decide('mqtt:subscribe', 'things/sensor-1/admin').reason).toBe('denied');
  });

  it('subscribe is allowed only when every topic the filter can match is allowed', () => {
    const compiled = device(sensor1, [policy('p', [
      { effect: 'allow', actions: ['mqtt:subscribe'], resources: ['topic/things/a/#'] },
      { sid: 'parent', effect: 'allow', actions: ['mqtt:subscribe'], resources: ['topic/fleet'] },
      { sid: 'children', effect: 'allow', actions: ['mqtt:subscribe'], resources: ['topic/fleet/+/#'] },
    ])]);
    expect(compiled.allows('mqtt:subscribe', 'things/a/#')).toBe(true);
    expect(compiled.allows('mqtt:subscribe', 'things/a/x/+')).toBe(true);
    expect(compiled.allows('mqtt:subscribe', 'things/+/x')).toBe(false);
    expect(compiled.allows('mqtt:subscribe', 'things/#')).toBe(false);
    // `fleet/#` is `fleet` plus `fleet/+/#`: two statements cover it together.
    expect(compiled.decide('mqtt:subscribe', 'fleet/#')).toEqual({
      allowed: true,
      reason: 'allowed',
      statement: { policy: 'p', index: 1, sid: 'parent' },
      together: [{ policy: 'p', index: 1, sid: 'parent' }, { policy: 'p', index: 2, sid: 'children' }],
    });
  });
});

describe('conditions', () => {
  const fromNetworks = policy('networks', [
    { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'], conditions: { sourceAddress: ['10.0.0.0/8', '2001:db8::/32'] } },
  ]);

  it.each([
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['::ffff:a01:203', true],
    ['11.0.0.1', false],
    ['2001:db8:0:1::5', true],
    ['2001:db9::5', false],
    ['::a01:203', false],
    ['fe80::1%eth0', false],
    ['not-an-address', false],
    [undefined, false],
  ])('source address %s: connect allowed %s', (sourceAddress, allowed) => {
    expect(device({ ...sensor1, sourceAddress }, [fromNetworks]).allows('mqtt:connect', 'sensor-1')).toBe(allowed);
  });

  it('a deny conditioned on a source address applies when the address is unknown (fail closed)', () => {
    const blocked = policy('blocked', [{ effect: 'deny', actions: ['mqtt:connect'], resources: ['client/*'], conditions: { sourceAddress: ['192.0.2.0/24'] } }]);
    expect(device({ ...sensor1, sourceAddress: '192.0.2.7' }, [DEFAULT, blocked]).decide('mqtt:connect', 'sensor-1').reason).toBe('denied');
    expect(device({ ...sensor1, sourceAddress: '198.51.100.1' }, [DEFAULT, blocked]).allows('mqtt:connect', 'sensor-1')).toBe(true);
    expect(device({ ...sensor1, sourceAddress: undefined }, [DEFAULT, blocked]).decide('mqtt:connect', 'sensor-1').reason).toBe('denied');
  });

  it('thing attribute equals: exact, and a missing attribute is a mismatch', () => {
    const berlin = policy('berlin', [{ effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/sites/berlin/#'], conditions: { thingAttributes: { site: 'berlin' } } }]);
    const quarantine = policy('quarantine', [{ effect: 'deny', actions: ['mqtt:publish'], resources: ['topic/#'], conditions: { thingAttributes: { quarantined: 'true' } } }]);
    expect(device(sensor1, [berlin, quarantine]).allows('mqtt:publish', 'sites/berlin/x')).toBe(true);
    expect(device({ thing: { name: 'sensor-1', attributes: { site: 'Berlin' } } }, [berlin]).allows('mqtt:publish', 'sites/berlin/x')).toBe(false);
    expect(device({ thing: { name: 'sensor-1', attributes: { site: 'berlin', quarantined: 'true' } } }, [berlin, quarantine]).decide('mqtt:publish', 'sites/berlin/x').reason).toBe('denied');
  });

  it('certificate issuer: only certificates from the named CA', () => {
    const issuer = policy('issuer', [{ effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'], conditions: { certIssuer: ['CN=Fleetward Issuing CA'] } }]);
    expect(device(sensor1, [issuer]).allows('mqtt:connect', 'sensor-1')).toBe(true);
    expect(device({ ...sensor1, cert: { cn: 'sensor-1', issuer: 'CN=Someone Else' } }, [issuer]).allows('mqtt:connect', 'sensor-1')).toBe(false);
    expect(device({ ...sensor1, cert: { cn: 'sensor-1' } }, [issuer]).allows('mqtt:connect', 'sensor-1')).toBe(false);
  });
});
