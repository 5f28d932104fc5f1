import { afterEach, describe, expect, it } from 'vitest';
import type { IdentityEventMap } from '../../src/identity/events.js';
import { THING_STATES, canTransition } from '../../src/identity/registry/lifecycle.js';
import { closeContext, openHome, type NodeContext } from '../../src/node.js';
import { DIALECTS, testEnvironment, type Dialect } from '../helpers/environment.js';
import { refusalCode } from '../helpers/refusals.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const alice = { name: 'operator:alice', source: '127.0.0.1' };

async function fresh(dialect: Dialect): Promise<NodeContext> {
  const env = await testEnvironment(dialect);
  const { context } = await openHome(env.config(), { create: true });
  cleanups.push(() => env.cleanup(), () => closeContext(context));
  return context;
}

async function counts(context: NodeContext) {
  const { db } = context.store;
  const n = async (table: 'things' | 'thing_types' | 'thing_groups' | 'group_members' | 'thing_attributes') => (await db.selectFrom(table).selectAll().execute()).length;
  return { things: await n('things'), types: await n('thing_types'), groups: await n('thing_groups'), members: await n('group_members'), attributes: await n('thing_attributes') };
}

describe.each(DIALECTS)('registry on %s', (dialect) => {
  it('creates things with a type, attributes and groups; starts them pending; audits who did it', async () => {
    const { identity, audit } = await fresh(dialect);
    await identity.thingTypes.create({ name: 'thermostat', description: 'Model T' }, alice);
    await identity.groups.create({ name: 'site-a' }, alice);
    const thing = await identity.things.create({ name: 'thermo:0001', type: 'thermostat', attributes: { floor: '3', room: 'boiler' }, groups: ['site-a'] }, alice);
    expect(thing).toMatchObject({ name: 'thermo:0001', type: 'thermostat', state: 'pending', attributes: { floor: '3', room: 'boiler' }, groups: ['site-a'] });
    const [created] = await audit.list({ limit: 10, action: 'thing.create' });
    expect(created).toMatchObject({ actor: 'operator:alice', source: '127.0.0.1', target: 'thing:thermo:0001', outcome: 'success' });
  });

  it('refuses bad names, unknown types and groups, duplicates and too many attributes, changing nothing', async () => {
    const context = await fresh(dialect);
    const { things } = context.identity;
    await things.create({ name: 'dev-1' }, alice);
    const before = await counts(context);
    for (const name of ['', 'has space', 'slash/name', 'x'.repeat(129), 'ümlaut', 'semi;colon']) expect(await refusalCode(things.create({ name }, alice)), name).toBe('FW_ERR_VALIDATION');
    expect(await refusalCode(things.create({ name: 'dev-1' }, alice))).toBe('FW_ERR_CONFLICT');
    expect(await refusalCode(things.create({ name: 'dev-2', type: 'nope' }, alice))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusalCode(things.create({ name: 'dev-2', groups: ['nope'] }, alice))).toBe('FW_ERR_NOT_FOUND');
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
    expect(await refusalCode(things.create({ name: 'dev-2', attributes: many }, alice))).toBe('FW_ERR_VALIDATION');
    expect(await refusalCode(things.create({ name: 'dev-2', attributes: { 'bad key': 'v' } }, alice))).toBe('FW_ERR_VALIDATION');
    expect(await refusalCode(things.create({ name: 'dev-2', attributes: { k: 'x'.repeat(801) } }, alice))).toBe('FW_ERR_VALIDATION');
    expect(await counts(context)).toEqual(before);
  });

  it('allows exactly the lifecycle transitions of the table; a refused one is audited and changes nothing', async () => {
    const { identity, audit } = await fresh(dialect);
    const events: IdentityEventMap['thingStateChanged'][] = [];
    identity.events.on('thingStateChanged', (e) => events.push(e));
    for (const from of THING_STATES) {
      for (const to of THING_STATES) {
        if (from === to) continue;
        const name = `t-${from}-${to}`;
        await identity.things.create({ name }, alice);
        const path: Record<string, string[]> = { pending: [], active: ['active'], suspended: ['active', 'suspended'], quarantined: ['active', 'quarantined'], decommissioned: ['decommissioned'] };
        for (const step of path[from] ?? []) await identity.things.setState(name, step as (typeof THING_STATES)[number], alice);
        if (canTransition(from, to)) {
          expect((await identity.things.setState(name, to, alice, 'test')).state).toBe(to);
        } else {
          expect(await refusalCode(identity.things.setState(name, to, alice)), `${from} → ${to}`).toBe('FW_ERR_INVALID_TRANSITION');
          expect((await identity.things.get(name)).state).toBe(from);
        }
      }
    }
    const denied = await audit.list({ limit: 1000, action: 'thing.state' });
    expect(denied.filter((e) => e.outcome === 'denied').length).toBeGreaterThan(0);
    expect(events.every((e) => canTransition(e.from, e.to))).toBe(true);
  });

  it('a decommissioned thing is read-only and cannot join groups', async () => {
    const { identity } = await fresh(dialect);
    await identity.groups.create({ name: 'g' }, alice);
    await identity.things.create({ name: 'old' }, alice);
    await identity.things.setState('old', 'decommissioned', alice);
    expect(await refusalCode(identity.things.update('old', { attributes: { a: 'b' } }, alice))).toBe('FW_ERR_CONFLICT');
    expect(await refusalCode(identity.groups.addThing('g', 'old', alice))).toBe('FW_ERR_CONFLICT');
  });

  it('updates attributes by merging, removes with null, and changes or clears the type', async () => {
    const { identity } = await fresh(dialect);
    await identity.thingTypes.create({ name: 'sensor' }, alice);
    await identity.things.create({ name: 's1', type: 'sensor', attributes: { a: '1', b: '2' } }, alice);
    const updated = await identity.things.update('s1', { type: null, attributes: { b: null, c: '3', a: '9' } }, alice);
    expect(updated).toMatchObject({ type: null, attributes: { a: '9', c: '3' } });
  });

  it('nests groups up to the depth limit, reports paths, and refuses deleting a group with subgroups', async () => {
    const { identity } = await fresh(dialect);
    const names = ['l0', 'l1', 'l2', 'l3', 'l4', 'l5', 'l6'];
    await identity.groups.create({ name: 'l0' }, alice);
    for (let i = 1; i < names.length; i++) await identity.groups.create({ name: names[i] as string, parent: names[i - 1] }, alice);
    expect(await refusalCode(identity.groups.create({ name: 'l7', parent: 'l6' }, alice))).toBe('FW_ERR_VALIDATION');
    const deep = await identity.groups.get('l3');
    expect(deep).toMatchObject({ parent: 'l2', path: ['l0', 'l1', 'l2'], children: ['l4'] });
    expect(await refusalCode(identity.groups.delete('l5', alice))).toBe('FW_ERR_CONFLICT');
    await identity.groups.delete('l6', alice);
    expect(await refusalCode(identity.groups.get('l6'))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusalCode(identity.groups.create({ name: 'x', parent: 'missing' }, alice))).toBe('FW_ERR_NOT_FOUND');
  });

  it('a thing\'s effective groups include every ancestor of the groups it is in', async () => {
    const { identity } = await fresh(dialect);
    await identity.groups.create({ name: 'fleet' }, alice);
    await identity.groups.create({ name: 'europe', parent: 'fleet' }, alice);
    await identity.groups.create({ name: 'berlin', parent: 'europe' }, alice);
    await identity.groups.create({ name: 'beta' }, alice);
    await identity.things.create({ name: 'd1', groups: ['berlin', 'beta'] }, alice);
    expect(await identity.groups.groupsOf('d1')).toEqual({ direct: ['berlin', 'beta'], effective: ['berlin', 'beta', 'europe', 'fleet'] });
    await identity.groups.removeThing('berlin', 'd1', alice);
    expect((await identity.groups.groupsOf('d1')).effective).toEqual(['beta']);
    expect(await refusalCode(identity.groups.removeThing('berlin', 'd1', alice))).toBe('FW_ERR_NOT_FOUND');
  });

  it('lists with filters (state, type, group including subgroups, attributes, prefix) and pages through results', async () => {
    const { identity } = await fresh(dialect);
    await identity.thingTypes.create({ name: 'cam' }, alice);
    await identity.groups.create({ name: 'site' }, alice);
    await identity.groups.create({ name: 'floor1', parent: 'site' }, alice);
    for (let i = 0; i < 25; i++) {
      await identity.things.create({ name: `cam-${String(i).padStart(2, '0')}`, type: 'cam', attributes: { parity: i % 2 === 0 ? 'even' : 'odd', floor: String(i % 3) }, ...(i < 10 && { groups: ['floor1'] }) }, alice);
    }
    await identity.things.create({ name: 'other' }, alice);
    await identity.things.setState('cam-03', 'active', alice);
    const names = async (query: Parameters<typeof identity.things.list>[0]) => (await identity.things.list(query)).things.map((t) => t.name);
    expect(await names({ limit: 100, state: 'active' })).toEqual(['cam-03']);
    expect((await names({ limit: 100, type: 'cam' })).length).toBe(25);
    expect((await names({ limit: 100, group: 'site' })).length).toBe(10);
    expect(await names({ limit: 100, attributes: { parity: 'even', floor: '0' } })).toEqual(['cam-00', 'cam-06', 'cam-12', 'cam-18', 'cam-24']);
    expect(await names({ limit: 100, namePrefix: 'cam-2' })).toEqual(['cam-20', 'cam-21', 'cam-22', 'cam-23', 'cam-24']);
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await identity.things.list({ limit: 7, ...(after !== undefined && { after }) });
      seen.push(...page.things.map((t) => t.name));
      if (page.next === null) break;
      after = page.next;
    }
    expect(seen).toHaveLength(26);
    expect(new Set(seen).size).toBe(26);
    expect(await refusalCode(identity.things.list({ limit: 10, group: 'nope' }))).toBe('FW_ERR_NOT_FOUND');
  });

  it('thing types: hardware-key requirement, update, and no deleting a type in use', async () => {
    const { identity } = await fresh(dialect);
    await identity.thingTypes.create({ name: 'lock', requireHardwareKey: true }, alice);
    expect(await refusalCode(identity.thingTypes.create({ name: 'lock' }, alice))).toBe('FW_ERR_CONFLICT');
    expect((await identity.thingTypes.update('lock', { description: 'Door lock' }, alice))).toMatchObject({ requireHardwareKey: true, description: 'Door lock' });
    await identity.things.create({ name: 'l1', type: 'lock' }, alice);
    expect(await refusalCode(identity.thingTypes.delete('lock', alice))).toBe('FW_ERR_CONFLICT');
    await identity.things.update('l1', { type: null }, alice);
    await identity.thingTypes.delete('lock', alice);
    expect(await identity.thingTypes.list()).toEqual([]);
  });
});
