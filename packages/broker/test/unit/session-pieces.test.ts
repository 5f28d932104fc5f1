import { describe, expect, it } from 'vitest';
import { DeadlineQueue } from '../../src/engine/deadline-queue.js';
import { KeyedSerializer } from '../../src/engine/keyed-serializer.js';
import { SessionRegistry, slotTransitions } from '../../src/engine/session-registry.js';
import { InboundTopicAliases } from '../../src/session/inbound-topic-aliases.js';
import { negotiateKeepAlive } from '../../src/session/keep-alive.js';
import { OutboundTopicAliases } from '../../src/session/outbound-topic-aliases.js';
import { Session } from '../../src/session/session.js';
import { readConnectPreamble } from '../../src/codec/connect-preamble.js';
import { connectionTransitions, nextConnectionState } from '../../src/connection/connection-state.js';
import { runSteps, type Step } from '../../src/steps.js';

describe('topic aliases', () => {
  it('MQTT-3.3.2-12: inbound aliases from 1 to our maximum map to the topic last set for them; 0, too high or unknown ones are refused', () => {
    const aliases = new InboundTopicAliases(2);
    expect(aliases.resolve(1, 'a/b')).toBe('a/b');
    expect(aliases.resolve(1, '')).toBe('a/b');
    expect(aliases.resolve(1, 'c')).toBe('c');
    expect(aliases.resolve(1, '')).toBe('c');
    expect(aliases.resolve(2, '')).toBe(0x82);
    expect(aliases.resolve(0, 'a')).toBe(0x94);
    expect(aliases.resolve(3, 'a')).toBe(0x94);
  });

  it('MQTT-3.3.2-11: outbound aliases go to the first topics up to the client maximum, and count once committed', () => {
    const aliases = new OutboundTopicAliases(1);
    expect(aliases.lookup('a')).toEqual({ alias: 1, known: false });
    expect(aliases.lookup('a')).toEqual({ alias: 1, known: false });
    aliases.commit('a', 1);
    expect(aliases.lookup('a')).toEqual({ alias: 1, known: true });
    expect(aliases.lookup('b')).toBeUndefined();
    expect(new OutboundTopicAliases(0).lookup('a')).toBeUndefined();
  });
});

describe('Keep Alive negotiation', () => {
  const limits = { minKeepAliveSeconds: 10, maxKeepAliveSeconds: 60 };
  it.each([
    [30, 5, 30, undefined],
    [0, 5, 60, 60],
    [120, 5, 60, 60],
    [5, 5, 10, 10],
    [120, 4, 60, undefined],
    [0, 4, 60, undefined],
  ] as const)('MQTT-3.2.2-21, -22: asked %i by an MQTT %i client: held to %i, Server Keep Alive %s', (requested, version, seconds, serverKeepAlive) => {
    expect(negotiateKeepAlive(requested, version, limits)).toEqual({ seconds, serverKeepAlive });
  });
});

describe('deadlines', () => {
  it('returns the keys due, earliest first, skipping ones moved or deleted', () => {
    const queue = new DeadlineQueue();
    queue.set('a', 30);
    queue.set('b', 10);
    queue.set('c', 20);
    queue.set('a', 5);
    queue.delete('c');
    expect(queue.takeDue(15)).toEqual(['a', 'b']);
    expect(queue.takeDue(100)).toEqual([]);
    expect(queue.size).toBe(0);
  });

  it('keeps memory bounded when the same keys are moved again and again', () => {
    const queue = new DeadlineQueue();
    for (let round = 0; round < 10_000; round++) queue.set(`k${round % 10}`, round);
    expect(queue.size).toBe(10);
    expect(queue.takeDue(10_000)).toHaveLength(10);
  });
});

describe('serialized tasks per key', () => {
  it('runs the tasks of one key one after another, even when one fails', async () => {
    const serializer = new KeyedSerializer();
    const order: string[] = [];
    const slow = serializer.run('k', async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      order.push('first');
      throw new Error('fails');
    });
    const next = serializer.run('k', () => {
      order.push('second');
      return Promise.resolve();
    });
    await expect(slow).rejects.toThrow('fails');
    await next;
    await serializer.idle();
    expect(order).toEqual(['first', 'second']);
  });
});

describe('the session registry', () => {
  it('has one transition table, and refuses transitions it does not list', () => {
    expect(slotTransitions.absent).toEqual({ open: 'opening', restore: 'offline' });
    const registry = new SessionRegistry<string>();
    const session = new Session('c', 60, 10);
    expect(() => registry.keep('c', [])).toThrow();
    registry.open('c', 'first', session, []);
    expect(registry.holds('c', 'first')).toBe(true);
    registry.open('c', 'second', session, []);
    expect(registry.holds('c', 'first')).toBe(false);
    expect(registry.accept('c', 'first')).toEqual([]);
    registry.accept('c', 'second');
    expect(registry.onlineCount).toBe(1);
    registry.keep('c', []);
    expect(registry.offlineCount).toBe(1);
    expect(() => registry.accept('c', 'second')).not.toThrow();
    registry.end('c');
    expect(registry.has('c')).toBe(false);
  });
});

describe('the connection state table', () => {
  it('allows only the transitions it lists', () => {
    expect(nextConnectionState('awaiting-connect', 'connect')).toBe('connecting');
    expect(nextConnectionState('connecting', 'challenge')).toBe('authenticating');
    expect(nextConnectionState('authenticating', 'response')).toBe('connecting');
    expect(nextConnectionState('connecting', 'accept')).toBe('connected');
    expect(() => nextConnectionState('connected', 'connect')).toThrow();
    expect(Object.keys(connectionTransitions.closed)).toEqual([]);
  });
});

describe('the CONNECT preamble', () => {
  it('MQTT-3.1.2-1, MQTT-3.1.2-2: reads the protocol name and level before the packet is decoded', () => {
    expect(readConnectPreamble(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0x02]))).toEqual({ kind: 'mqtt', level: 5, flags: 2 });
    expect(readConnectPreamble(Buffer.from([0x10, 0x0c, 0x00, 0x06, 0x4d, 0x51, 0x49, 0x73, 0x64, 0x70, 0x03]))).toEqual({ kind: 'mqtt', level: 3, flags: undefined });
    expect(readConnectPreamble(Buffer.from([0x10, 0x0c, 0x00, 0x02, 0x68, 0x6a, 0x04]))).toEqual({ kind: 'not-mqtt' });
    expect(readConnectPreamble(Buffer.from([0x10, 0x0c, 0x00]))).toEqual({ kind: 'incomplete' });
  });
});

describe('running protocol steps', () => {
  it('stays synchronous while the steps are, and waits for the ones that are not', async () => {
    const seen: string[] = [];
    const sync: Step<string[]> = (log) => (log.push('sync'), 'next');
    const later: Step<string[]> = async (log) => {
      await Promise.resolve();
      log.push('async');
      return 'next' as const;
    };
    const stop: Step<string[]> = (log) => (log.push('stop'), 'stop');
    expect(runSteps([sync, sync], seen)).toBe('next');
    const pending = runSteps([sync, later, stop, sync], seen);
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toBe('stop');
    expect(seen).toEqual(['sync', 'sync', 'sync', 'async', 'stop']);
  });
});
