import { afterEach, describe, expect, it } from 'vitest';
import { PreparedQuery } from '../../src/store/prepared-query.js';
import { DIALECTS } from '../helpers/environment.js';
import { freshContext } from '../helpers/test-node.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const admin = { name: 'operator:admin' };

/** Things of one type, optionally named from a list: the shape changes with null and the list's length. */
const thingsOf = new PreparedQuery((db, type: string, names: readonly string[] | null) =>
  db
    .selectFrom('things')
    .select(['name'])
    .where('type', '=', type)
    // A constant: it stays in the compiled query's parameters.
    .where('state', '=', 'pending')
    .$if(names !== null, (q) => q.where('name', 'in', [...(names ?? [])]))
    .orderBy('name'),
);

describe.each(DIALECTS)('prepared queries on %s (compiled once per shape, run with other values)', (dialect) => {
  it('answers as the built query does, for every value and shape, and keeps a value out of the SQL', async () => {
    const context = await freshContext(dialect, cleanups);
    const { things, thingTypes } = context.identity;
    for (const type of ['meter', 'valve']) await thingTypes.create({ name: type }, admin);
    for (const [name, type] of [['m-1', 'meter'], ['m-2', 'meter'], ['m-3', 'meter'], ['v-1', 'valve']] as const) await things.create({ name, type }, admin);
    const { db } = context.store;
    const names = async (type: string, list: readonly string[] | null): Promise<string[]> => (await thingsOf.run(db, type, list)).map((r) => r.name);

    expect(await names('meter', null)).toEqual(['m-1', 'm-2', 'm-3']);
    expect(await names('valve', null)).toEqual(['v-1']);
    expect(await names('meter', ['m-3', 'm-1'])).toEqual(['m-1', 'm-3']);
    expect(await names('meter', ['m-2'])).toEqual(['m-2']);
    expect(await names('valve', ['m-1', 'm-2'])).toEqual([]);
    // A value is a parameter, never SQL: a quote in it finds nothing rather than everything.
    expect(await names("meter' or '1'='1", null)).toEqual([]);
    expect(await names('meter', ["m-1') or ('1'='1"])).toEqual([]);
  });

  it('refuses a builder that does not carry a value as a parameter (its SQL would not follow the value)', async () => {
    const context = await freshContext(dialect, cleanups);
    const branching = new PreparedQuery((db, type: string) =>
      db
        .selectFrom('things')
        .select(['name'])
        .$if(type.startsWith('m'), (q) => q.where('state', '=', 'active')),
    );
    await expect(branching.run(context.store.db, 'meter')).rejects.toThrow(/value 0 is not a parameter/);
  });
});
