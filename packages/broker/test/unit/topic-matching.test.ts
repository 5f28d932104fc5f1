import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { topicMatches } from '../../src/topic/topic-matches.js';
import { SubscriptionIndex } from '../../src/topic/subscription-index.js';
import { TopicTree } from '../../src/topic/topic-tree.js';
import { parseTopicFilter } from '../../src/topic/topic-filter.js';
import { checkTopicName } from '../../src/topic/topic-name.js';

const limits = { maxTopicLengthBytes: 64, maxTopicLevels: 8 };

// A small alphabet so that generated filters and topics collide often; '$' leads some levels.
const level = fc.constantFrom('a', 'b', '', '$s', 'c');
const topicArbitrary = fc.array(level, { minLength: 1, maxLength: 5 }).map((levels) => levels.join('/'));
const filterArbitrary = fc
  .tuple(fc.array(fc.oneof(level, fc.constant('+')), { minLength: 0, maxLength: 4 }), fc.boolean())
  .filter(([levels, hash]) => levels.length > 0 || hash)
  .map(([levels, hash]) => [...levels, ...(hash ? ['#'] : [])].join('/'));

describe('the reference matcher', () => {
  it.each([
    ['sport/#', 'sport', true],
    ['sport/#', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['#', '$SYS/monitor', false],
    ['+/monitor/Clients', '$SYS/monitor/Clients', false],
    ['$SYS/#', '$SYS/monitor/Clients', true],
    ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
    ['ACCOUNTS', 'Accounts', false],
  ])('MQTT-4.7.1, MQTT-4.7.2-1, MQTT-4.7.3-4: %s against %s is %s', (pattern, topic, expected) => {
    expect(topicMatches(pattern, topic)).toBe(expected);
  });
});

describe('topic matching, property-tested against the reference matcher', () => {
  it('the subscription index finds exactly the filters that match a topic, $-topics and shared subscriptions included', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(filterArbitrary, fc.option(fc.constantFrom('g1', 'g2'), { nil: undefined })), { maxLength: 12 }), topicArbitrary, (filters, topic) => {
        const index = new SubscriptionIndex<string>();
        filters.forEach(([pattern, group], position) => index.add(pattern, `client${position}`, pattern, group));
        const found: string[] = [];
        const groups: string[] = [];
        index.match(topic, {
          subscriber: (clientId) => found.push(clientId),
          group: (shared) => groups.push(shared.name),
        });
        const expectedDirect = filters.flatMap(([pattern, group], position) => (group === undefined && topicMatches(pattern, topic) ? [`client${position}`] : []));
        const expectedGroups = new Set(filters.flatMap(([pattern, group]) => (group !== undefined && topicMatches(pattern, topic) ? [`${pattern}|${group}`] : [])));
        expect(found.sort()).toEqual(expectedDirect.sort());
        expect(groups.length).toBe(expectedGroups.size);
      }),
      { numRuns: 500 },
    );
  });

  it('the subscription index forgets removed filters and prunes its trie', () => {
    fc.assert(
      fc.property(fc.uniqueArray(filterArbitrary, { maxLength: 10 }), topicArbitrary, (filters, topic) => {
        const index = new SubscriptionIndex<string>();
        for (const pattern of filters) index.add(pattern, 'client', pattern);
        for (const pattern of filters) expect(index.remove(pattern, 'client')).toBe(true);
        expect(index.size).toBe(0);
        const found: string[] = [];
        index.match(topic, { subscriber: (clientId) => found.push(clientId), group: () => found.push('group') });
        expect(found).toEqual([]);
      }),
    );
  });

  it('the retained-message tree finds exactly the topics a filter matches', () => {
    fc.assert(
      fc.property(fc.uniqueArray(topicArbitrary, { maxLength: 12 }), filterArbitrary, (topics, pattern) => {
        const tree = new TopicTree<string>();
        for (const topic of topics) tree.set(topic, topic);
        expect(tree.match(pattern).sort()).toEqual(topics.filter((topic) => topicMatches(pattern, topic)).sort());
      }),
      { numRuns: 500 },
    );
  });

  it('the retained-message tree deletes topics and keeps its size', () => {
    fc.assert(
      fc.property(fc.uniqueArray(topicArbitrary, { maxLength: 12 }), (topics) => {
        const tree = new TopicTree<string>();
        for (const topic of topics) tree.set(topic, topic);
        expect(tree.size).toBe(topics.length);
        for (const topic of topics) expect(tree.delete(topic)).toBe(true);
        expect(tree.size).toBe(0);
        expect(tree.match('#')).toEqual([]);
      }),
    );
  });
});

describe('shared subscription groups', () => {
  it('MQTT 4.8.2: picks members in turn, passing over the ones not accepted', () => {
    const index = new SubscriptionIndex<string>();
    for (const clientId of ['a', 'b', 'c']) index.add('t', clientId, clientId, 'g');
    const picks: string[] = [];
    for (let round = 0; round < 6; round++) {
      index.match('t', { subscriber: () => undefined, group: (group) => picks.push(group.pick((clientId) => clientId !== 'b')?.clientId ?? '') });
    }
    expect(picks).toEqual(['a', 'c', 'a', 'c', 'a', 'c']);
    index.match('t', { subscriber: () => undefined, group: (group) => picks.push(group.pick(() => false)?.clientId ?? '') });
    expect(['a', 'b', 'c']).toContain(picks[6]);
  });
});

describe('topic names and filters', () => {
  it.each([
    ['a/b', undefined],
    ['/', undefined],
    ['', 'malformed'],
    ['a/+', 'malformed'],
    ['#', 'malformed'],
    ['a\u0000b', 'malformed'],
    ['x'.repeat(65), 'too-long'],
    ['é'.repeat(33), 'too-long'],
    ['a/b/c/d/e/f/g/h/i', 'too-deep'],
  ])('checks the topic name %j: %s', (topic, problem) => {
    expect(checkTopicName(topic, limits)).toBe(problem);
  });

  it.each([
    ['a/#', { pattern: 'a/#', shareGroup: undefined }],
    ['+/+/#', { pattern: '+/+/#', shareGroup: undefined }],
    ['$share/g/a/+', { pattern: 'a/+', shareGroup: 'g' }],
    ['$share/g//finance', { pattern: '/finance', shareGroup: 'g' }],
    ['$share', { pattern: '$share', shareGroup: undefined }],
    ['', 'malformed'],
    ['a/#/b', 'malformed'],
    ['a#', 'malformed'],
    ['a+/b', 'malformed'],
    ['$share//a', 'malformed'],
    ['$share/g', 'malformed'],
    ['$share/g/', 'malformed'],
    ['$share/g+/a', 'malformed'],
    ['a/b/c/d/e/f/g/h/#', 'too-deep'],
  ])('parses the topic filter %j (MQTT-4.7.1-1, MQTT-4.7.1-2, MQTT-4.8.2-1, MQTT-4.8.2-2)', (filter, expected) => {
    const parsed = parseTopicFilter(filter, limits);
    if (typeof expected === 'string') expect(parsed).toBe(expected);
    else expect(parsed).toMatchObject(expected);
  });
});
