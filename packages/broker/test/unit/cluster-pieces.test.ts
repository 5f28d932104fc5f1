import { describe, expect, it } from 'vitest';
import { BatchWriter, encodeControl, readBatch, readFrame } from '../../src/cluster/bus-frames.js';
import { PendingClaim } from '../../src/cluster/pending-claim.js';
import { SharedNodes } from '../../src/cluster/shared-nodes.js';
import type { Message, Subscription } from '../../src/message.js';
import { RecordFormatError } from '../../src/records/byte-reader.js';
import { decodeSession, encodeSession } from '../../src/records/session-record.js';

const message = (topic: string, extra: Partial<Message> = {}): Message => ({
  topic,
  payload: Buffer.from(topic),
  qos: 1,
  retain: false,
  properties: undefined,
  expiresAt: undefined,
  publisher: 'p',
  ...extra,
});

const subscription = (pattern: string, extra: Partial<Subscription> = {}): Subscription => ({
  filter: pattern,
  pattern,
  shareGroup: undefined,
  qos: 2,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 0,
  subscriptionId: undefined,
  ...extra,
});

describe('bus frames', () => {
  it('carry a batch of messages exactly, with their sequence numbers, shared choices and publisher', () => {
    const first = message('a/b', { payload: Buffer.from([0, 255, 1]), qos: 2, retain: true, properties: { correlationData: Buffer.from([9]), userProperties: { k: ['1', '2'] } } });
    const second = message('c', { publisher: undefined });
    const batch = new BatchWriter('node-a', 1000);
    batch.add(7, first, [{ node: 'node-b', pattern: 'a/+', group: 'g' }]);
    batch.add(8, second, []);
    const frame = readFrame(batch.finish());
    if (frame.kind !== 'batch') throw new Error('not a batch');
    expect(frame.node).toBe('node-a');
    expect(readBatch(frame.node, frame.reader, 5000)).toEqual([
      { node: 'node-a', seq: 7, message: first, shared: [{ node: 'node-b', pattern: 'a/+', group: 'g' }] },
      { node: 'node-a', seq: 8, message: second, shared: [] },
    ]);
  });

  it('MQTT-3.3.2-6: carry the time a message has left, read against the receiving clock', () => {
    const batch = new BatchWriter('node-a', 1_000);
    batch.add(1, message('t', { expiresAt: 4_000 }), []);
    const frame = readFrame(batch.finish());
    if (frame.kind !== 'batch') throw new Error('not a batch');
    // The receiver's clock is 10 s ahead: the message still has its 3 s left.
    expect(readBatch(frame.node, frame.reader, 11_000)[0]?.message.expiresAt).toBe(14_000);
  });

  it('read control events, and refuse malformed ones', () => {
    const claim = { kind: 'claim', clientId: 'c', claimer: 'b', owner: 'a', cleanStart: false, token: 'b/1' } as const;
    expect(readFrame(Buffer.from(encodeControl(claim)))).toEqual(claim);
    expect(readFrame(Buffer.from('{"kind":"share","node":"a","group":"g","pattern":"p","online":null}'))).toEqual({ kind: 'share', node: 'a', group: 'g', pattern: 'p', online: undefined });
    expect(() => readFrame(Buffer.from('{"kind":"release","clientId":"c","owner":"a","claimer":"b","token":"t","lastSeq":-1}'))).toThrow(RecordFormatError);
    expect(() => readFrame(Buffer.from('{"kind":"nonsense"}'))).toThrow(RecordFormatError);
    expect(() => readFrame(Buffer.from([0x01, 0, 0]))).toThrow(RecordFormatError);
  });

  it('refuse a session record of another format version, or truncated', () => {
    const record = encodeSession({ clientId: 'c', expiryIntervalSeconds: 1, expiresAt: undefined, subscriptions: [], flights: [], incomingQos2: [] });
    expect(() => decodeSession(Buffer.concat([Buffer.from([2]), record.subarray(1)]))).toThrow(RecordFormatError);
    expect(() => decodeSession(record.subarray(0, record.length - 1))).toThrow(RecordFormatError);
  });
});

describe('a pending claim', () => {
  const claimFor = (limit = 100, dropped: string[] = []) => new PendingClaim('x', false, 'b/1', limit, () => dropped.push('dropped'));

  it('records our messages from the claim on, the others only once our claim is heard on the bus', () => {
    const pending = claimFor();
    pending.recordOther('a', 1, message('t/1'));
    pending.recordOwn('b', 1, message('t/2'));
    pending.heard();
    pending.recordOther('c', 5, message('t/3'));
    expect(pending.deliveries([subscription('t/+')]).map((delivery) => delivery.message.topic)).toEqual(['t/2', 't/3']);
  });

  it("leaves out what the previous owner delivered itself, up to its release's sequence number", () => {
    const pending = claimFor();
    pending.heard();
    for (const seq of [4, 5, 6]) pending.recordOther('a', seq, message(`t/${seq}`));
    pending.recordOther('c', 5, message('t/c5'));
    pending.released({ clientId: 'x', owner: 'a', claimer: 'b', token: 'b/1', lastSeq: 5 });
    expect(pending.deliveries([subscription('t/+')]).map((delivery) => delivery.message.topic)).toEqual(['t/6', 't/c5']);
  });

  it('ignores the release of an older claim', async () => {
    const pending = claimFor();
    pending.released({ clientId: 'x', owner: 'a', claimer: 'b', token: 'b/0', lastSeq: 5 });
    expect(await pending.waitForRelease(20)).toBe(false);
  });

  it('matches recorded messages as the router does: QoS, No Local, plain subscriptions only', () => {
    const pending = claimFor();
    pending.recordOwn('b', 1, message('t/1', { qos: 2 }));
    pending.recordOwn('b', 2, message('own', { publisher: 'x' }));
    const deliveries = pending.deliveries([
      subscription('t/+', { qos: 1, subscriptionId: 3 }),
      subscription('own', { noLocal: true }),
      subscription('t/#', { shareGroup: 'g', filter: '$share/g/t/#' }),
    ]);
    expect(deliveries).toEqual([{ message: message('t/1', { qos: 2 }), qos: 1, retain: false, subscriptionIds: [3] }]);
  });

  it('stops recording once superseded, and bounds what it records', () => {
    const dropped: string[] = [];
    const pending = claimFor(2, dropped);
    for (const seq of [1, 2, 3]) pending.recordOwn('b', seq, message(`t/${seq}`));
    pending.supersede({ clientId: 'x', claimer: 'c', owner: 'b', cleanStart: false, token: 'c/1' }, 3);
    pending.recordOwn('b', 4, message('t/4'));
    expect(dropped).toEqual(['dropped']);
    expect(pending.deliveries([subscription('t/+')]).map((delivery) => delivery.message.topic)).toEqual(['t/2', 't/3']);
  });
});

describe('shared subscriptions by node', () => {
  const chosen = (nodes: SharedNodes, topic: string): string[] => {
    const picks: string[] = [];
    nodes.match(topic, (group) => picks.push(`${group.name}:${group.pick((_node, online) => online)?.clientId ?? '-'}`));
    return picks;
  };

  it('MQTT 4.8.2: picks one node per group and message, taking turns among nodes with a connected member', () => {
    const nodes = new SharedNodes();
    nodes.set({ node: 'a', pattern: 't/+', group: 'g', online: true });
    nodes.set({ node: 'b', pattern: 't/+', group: 'g', online: true });
    nodes.set({ node: 'c', pattern: 't/+', group: 'g', online: false });
    expect([...chosen(nodes, 't/1'), ...chosen(nodes, 't/2'), ...chosen(nodes, 't/3')]).toEqual(['g:a', 'g:b', 'g:a']);
    nodes.set({ node: 'a', pattern: 't/+', group: 'g', online: undefined });
    nodes.set({ node: 'b', pattern: 't/+', group: 'g', online: undefined });
    expect(chosen(nodes, 't/1')).toEqual(['g:c']);
    nodes.removeNode('c');
    expect(chosen(nodes, 't/1')).toEqual([]);
  });

  it('replays the updates heard while a snapshot was read over it, keeping its own entries', () => {
    const nodes = new SharedNodes();
    nodes.set({ node: 'self', pattern: 'p', group: 'g', online: true });
    nodes.set({ node: 'gone', pattern: 'p', group: 'g', online: true });
    nodes.beginSnapshot();
    nodes.update({ node: 'a', pattern: 'p', group: 'g', online: true });
    nodes.update({ node: 'b', pattern: 'p', group: 'g', online: undefined });
    nodes.endSnapshot([{ node: 'b', pattern: 'p', group: 'g', online: true }], 'self');
    const members = new Set<string>();
    nodes.match('p', (group) => {
      for (let turn = 0; turn < 4; turn++) members.add(group.pick(() => true)?.clientId ?? '-');
    });
    expect([...members].sort()).toEqual(['a', 'self']);
  });
});
