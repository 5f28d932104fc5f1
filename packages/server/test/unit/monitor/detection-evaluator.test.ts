import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { step, QUIET, type AlarmState } from '../../../src/monitor/detection/detection-state.js';
import { compare, evaluateWindow } from '../../../src/monitor/detection/evaluate-window.js';
import { percentile } from '../../../src/monitor/detection/percentile.js';
import { parseSecurityProfile } from '../../../src/monitor/detection/security-profile.js';
import { cidrSet, portSet, setViolations, stringSet } from '../../../src/monitor/detection/value-sets.js';
import { EMPTY_CLOUD, type WindowMetrics } from '../../../src/monitor/metrics/window-metrics.js';

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
const toInt = ([a, b, c, d]: [number, number, number, number]) => ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
const text = (t: [number, number, number, number]) => t.join('.');

describe('set operators', () => {
  it('an IPv4 address is in a CIDR block exactly when its leading prefix bits equal the network\'s', () => {
    fc.assert(
      fc.property(ipv4, ipv4, fc.integer({ min: 0, max: 32 }), (address, network, prefix) => {
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        const net = (toInt(network) & mask) >>> 0;
        const block = `${[net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join('.')}/${prefix}`;
        const set = cidrSet([block]);
        if (typeof set === 'string') throw new Error(set);
        const expected = ((toInt(address) & mask) >>> 0) === net;
        expect(setViolations('in', set, [text(address)]).length === 1).toBe(expected);
        expect(setViolations('not-in', set, [text(address)]).length === 1).toBe(!expected);
      }),
    );
  });

  it('in and not-in split every list: each item violates exactly one of them', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 65_535 }), { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 65_535 }), { maxLength: 20 }), (items, allowed) => {
        const set = portSet(allowed);
        if (typeof set === 'string') throw new Error(set);
        const inside = setViolations('in', set, items);
        const outside = setViolations('not-in', set, items);
        expect(inside.length + outside.length).toBe(items.length);
        for (const item of inside) expect(allowed).toContain(item);
        for (const item of outside) expect(allowed).not.toContain(item);
      }),
    );
  });

  it('a port range covers its ends and nothing outside; listening sockets (tcp/22) count by port', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65_535 }), fc.integer({ min: 0, max: 65_535 }), fc.integer({ min: 0, max: 65_535 }), (a, b, port) => {
        const [low, high] = a <= b ? [a, b] : [b, a];
        const set = portSet([`${low}-${high}`]);
        if (typeof set === 'string') throw new Error(set);
        expect(setViolations('in', set, [`tcp/${port}`]).length === 1).toBe(port >= low && port <= high);
      }),
    );
  });

  it('string sets compare whole strings', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 10 }), fc.array(fc.string(), { maxLength: 10 }), (items, members) => {
        const set = stringSet(members);
        expect(setViolations('not-in', set, items)).toEqual(items.filter((i) => !members.includes(i)));
      }),
    );
  });

  it('refuses malformed sets', () => {
    expect(cidrSet(['10.0.0.1/8'])).toMatch(/host bits/);
    expect(portSet(['70000'])).toMatch(/not a port/);
    expect(portSet(['9-3'])).toMatch(/not a port/);
  });
});

describe('percentile (nearest rank)', () => {
  it('at least p % of the values are at or below it, and fewer than p % strictly below it', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 300 }), fc.constantFrom(50, 90, 95, 99), (values, p) => {
        const q = percentile(values, p);
        expect(values).toContain(q);
        expect(values.filter((v) => v <= q).length).toBeGreaterThanOrEqual((p / 100) * values.length);
        expect(values.filter((v) => v < q).length).toBeLessThan((p / 100) * values.length);
      }),
    );
  });

  it('is NaN without values', () => {
    expect(percentile([], 90)).toBeNaN();
  });
});

describe('consecutive datapoints', () => {
  const run = (points: readonly boolean[], toAlarm: number, toClear: number) => {
    let state: AlarmState = QUIET;
    return points.map((violated) => {
      const next = step(state, violated, toAlarm, toClear);
      state = next.state;
      return { fire: next.fire, alarming: state.alarming };
    });
  };
  const params = fc.tuple(fc.array(fc.boolean(), { maxLength: 60 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }));

  it('never fires without a run of datapointsToAlarm violations first', () => {
    fc.assert(
      fc.property(params, ([points, toAlarm, toClear]) => {
        const out = run(points, toAlarm, toClear);
        let streak = 0;
        let reached = false;
        for (const [i, violated] of points.entries()) {
          streak = violated ? streak + 1 : 0;
          if (streak >= toAlarm) reached = true;
          if (out[i]?.fire === true) expect(reached).toBe(true);
          if (!reached) expect(out[i]?.alarming).toBe(false);
        }
      }),
    );
  });

  it('fires on the datapoint that completes a run of datapointsToAlarm violations', () => {
    fc.assert(
      fc.property(params, ([points, toAlarm, toClear]) => {
        const out = run(points, toAlarm, toClear);
        let streak = 0;
        for (const [i, violated] of points.entries()) {
          streak = violated ? streak + 1 : 0;
          if (streak >= toAlarm) expect(out[i]?.fire).toBe(true);
        }
      }),
    );
  });

  it('once alarming, stays alarming (and fires on each violation) until datapointsToClear clean datapoints in a row', () => {
    fc.assert(
      fc.property(params, ([points, toAlarm, toClear]) => {
        const out = run(points, toAlarm, toClear);
        let clean = 0;
        for (let i = 1; i < points.length; i += 1) {
          clean = points[i] === true ? 0 : clean + 1;
          if (out[i - 1]?.alarming === true) {
            expect(out[i]?.alarming).toBe(clean < toClear);
            if (points[i] === true) expect(out[i]?.fire).toBe(true);
          }
          if (points[i] === false) expect(out[i]?.fire).toBe(false);
        }
      }),
    );
  });
});

describe('number operators', () => {
  it('agree with JavaScript comparison', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true }), fc.double({ noNaN: true }), (a, b) => {
        expect(compare('gt', a, b)).toBe(a > b);
        expect(compare('lt', a, b)).toBe(a < b);
        expect(compare('gte', a, b)).toBe(a >= b);
        expect(compare('lte', a, b)).toBe(a <= b);
        expect(compare('eq', a, b)).toBe(a === b);
      }),
    );
  });
});

describe('fleet statistic behaviours', () => {
  const window = (thing: string, messagesIn: number): WindowMetrics => ({ thing, windowStart: 'a', windowEnd: 'b', cloud: { ...EMPTY_CLOUD, messagesIn }, device: null, custom: {} });

  it('a device above the p90 of its profile\'s devices is detected; the p90 is over those devices only', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(1000), { minLength: 1, maxLength: 50 }), fc.array(fc.nat(100_000), { maxLength: 10 }), (values, others) => {
        const profile = parseSecurityProfile({ name: 'p', behaviors: [{ name: 'busy', metric: 'cloud.messagesIn', operator: 'gt', statistic: 'p90' }] });
        const devices = [...values.map((v, i) => ({ window: window(`d${i}`, v), profiles: ['p'] })), ...others.map((v, i) => ({ window: window(`x${i}`, v), profiles: [] }))];
        const out = evaluateWindow({ windowEnd: 'b', windowSeconds: 60, devices, profiles: new Map([['p', profile]]), state: new Map() });
        const p90 = percentile(values, 90);
        expect(out.statistics.get('p/busy')).toBe(p90);
        const flagged = out.detections.filter((d) => d.behavior === 'busy').map((d) => d.thing).sort();
        expect(flagged).toEqual(values.flatMap((v, i) => (v > p90 ? [`d${i}`] : [])).sort());
        expect(flagged.length).toBeLessThanOrEqual(Math.floor(values.length * 0.1));
      }),
    );
  });
});

describe('security profile documents', () => {
  it('refuses what would not evaluate', () => {
    const bad = [
      { name: 'p', behaviors: [{ name: 'x', metric: 'cloud.nope', operator: 'gt', value: 1 }] },
      { name: 'p', behaviors: [{ name: 'x', metric: 'device.listeningPorts', operator: 'gt', value: 1 }] },
      { name: 'p', behaviors: [{ name: 'x', metric: 'cloud.messagesIn', operator: 'gt', value: 1, statistic: 'p90' }] },
      { name: 'p', behaviors: [{ name: 'x', metric: 'device.destinations', operator: 'not-in', cidrs: ['10.0.0.1/8'] }] },
      { name: 'p', behaviors: [{ name: 'x', metric: 'cloud.messagesIn', operator: 'gt', value: 1, actions: ['explode'] }] },
      { name: 'p', behaviors: [{ name: 'x', metric: 'cloud.messagesIn', operator: 'gt', value: 1 }, { name: 'x', metric: 'cloud.bytesIn', operator: 'gt', value: 1 }] },
    ];
    for (const doc of bad) {
      let code: unknown;
      try {
        parseSecurityProfile(doc);
      } catch (error) {
        code = (error as { code?: unknown }).code;
      }
      expect(code).toBe('FW_ERR_VALIDATION');
    }
  });
});
