import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditEvent } from '../../src/audit/audit-events.js';
import type { NodeContext } from '../../src/node.js';
import { openStore } from '../../src/store/store.js';
import { DIALECTS, TestClock } from '../helpers/environment.js';
import { freshContext } from '../helpers/test-node.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function event(n: number): AuditEvent {
  return { actor: `operator:o${n % 3}`, action: 'token.create', outcome: 'success', target: `token:t${n}`, source: '127.0.0.1', details: { n, nested: { b: [1, 'two'], a: null } } };
}

async function fill(context: NodeContext, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => context.audit.record(event(i))));
}

/** What an attacker with owner rights on the database does first. */
async function removeAppendOnlyGuard(context: NodeContext): Promise<void> {
  if (context.store.dialect === 'sqlite') {
    for (const trigger of ['audit_events_no_update', 'audit_events_no_delete']) await sql.raw(`drop trigger ${trigger}`).execute(context.store.db);
  } else {
    await sql`alter table audit_events disable trigger user`.execute(context.store.db);
  }
}

describe.each(DIALECTS)('audit trail on %s', (dialect) => {
  it('appends in order with every event linked to the one before, and verifies', async () => {
    const context = await freshContext(dialect, cleanups);
    const before = (await context.audit.verify()).checked;
    await fill(context, 250);
    const result = await context.audit.verify();
    expect(result).toMatchObject({ ok: true, checked: before + 250, firstBreak: null });
    const events = await context.audit.list({ afterSeq: before, limit: 1000 });
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 250 }, (_, i) => before + i + 1));
    for (let i = 1; i < events.length; i++) expect(events[i]?.prevHash).toBe(events[i - 1]?.hash);
    expect(JSON.parse(events[0]?.details ?? '')).toEqual({ n: 0, nested: { a: null, b: [1, 'two'] } });
  });

  it('two writers on one database (a node and the CLI) extend one chain without forking it', async () => {
    const context = await freshContext(dialect, cleanups);
    const second = await openStore(
      context.store.dialect === 'sqlite'
        ? { kind: 'sqlite', file: context.layout.databaseFile }
        : { kind: 'postgres', url: context.config.database.url as string, schema: context.config.database.schema, poolSize: 4 },
    );
    cleanups.push(() => second.close());
    const other = new AuditLog(second, new TestClock());
    await Promise.all([fill(context, 200), Promise.all(Array.from({ length: 200 }, (_, i) => other.record(event(1000 + i))))]);
    const result = await context.audit.verify();
    expect(result.ok).toBe(true);
    expect(result.checked).toBeGreaterThanOrEqual(400);
  });

  it('a stream of events shares commits (at most one every 10 ms); each record still resolves only once committed', async () => {
    const context = await freshContext(dialect, cleanups);
    const commits: number[] = [];
    const log = new AuditLog(context.store, new TestClock(), (count) => commits.push(count));
    const before = (await context.audit.verify()).checked;
    // One event a millisecond for 200 ms, each awaited by its caller, as connects arrive in a storm.
    const recorded: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      recorded.push(log.record(event(i)).then(async () => expect((await context.audit.list({ afterSeq: before + i, limit: 1 })).length).toBe(1)));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(recorded);
    expect(commits.reduce((a, b) => a + b, 0)).toBe(200);
    // Spread over at least 200 ms at one commit per 10 ms: about 20 commits, never one per event.
    expect(commits.length).toBeLessThan(60);
    expect((await context.audit.verify()).ok).toBe(true);
  });

  it('an idle trail commits an event at once', async () => {
    const context = await freshContext(dialect, cleanups);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = performance.now();
    await context.audit.record(event(1));
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('an event out of bounds is a rejected promise (never a synchronous throw) and writes nothing', async () => {
    const context = await freshContext(dialect, cleanups);
    const before = await context.audit.verify();
    const oversized = context.audit.record({ actor: 'node', action: 'node.start', outcome: 'success', details: { blob: 'x'.repeat(20_000) } });
    await expect(oversized).rejects.toMatchObject({ code: 'FW_ERR_INTERNAL' });
    await expect(context.audit.record({ actor: '', action: 'node.start', outcome: 'success' })).rejects.toMatchObject({ code: 'FW_ERR_INTERNAL' });
    expect(await context.audit.verify()).toMatchObject({ ok: true, checked: before.checked });
  });

  it('an event recorded inside a transaction that rolls back leaves no trace', async () => {
    const context = await freshContext(dialect, cleanups);
    const before = await context.audit.verify();
    await expect(
      context.store.db.transaction().execute(async (trx) => {
        await context.audit.recordWithin(trx, [event(1)]);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await context.audit.verify()).toMatchObject({ ok: true, checked: before.checked, head: before.head });
  });

  it('the database refuses to change, delete or truncate audit events', async () => {
    const context = await freshContext(dialect, cleanups);
    await fill(context, 3);
    await expect(sql`update audit_events set actor = 'x' where seq = 1`.execute(context.store.db)).rejects.toThrow(/append-only/);
    await expect(sql`delete from audit_events where seq = 2`.execute(context.store.db)).rejects.toThrow(/append-only/);
    if (dialect === 'postgres') await expect(sql`truncate audit_events`.execute(context.store.db)).rejects.toThrow(/append-only/);
    expect(await context.audit.verify()).toMatchObject({ ok: true });
  });

  describe('tampering with rows by an attacker who removed the database guard is found, naming the first bad event', () => {

    it('a modified row', async () => {
      const context = await freshContext(dialect, cleanups);
      await fill(context, 20);
      await removeAppendOnlyGuard(context);
      await sql`update audit_events set actor = 'operator:mallory' where seq = 12`.execute(context.store.db);
      expect((await context.audit.verify()).firstBreak).toMatchObject({ kind: 'modified', seq: 12 });
    });

    it('a modified row whose hash was recomputed by the attacker', async () => {
      const context = await freshContext(dialect, cleanups);
      await fill(context, 20);
      await removeAppendOnlyGuard(context);
      const { chainHash } = await import('../../src/audit/audit-chain.js');
      const [row] = await context.audit.list({ afterSeq: 11, limit: 1 });
      if (!row) throw new Error('row 12 missing');
      const forged = { ...row, outcome: 'denied' };
      await sql`update audit_events set outcome = 'denied', hash = ${chainHash(forged)} where seq = 12`.execute(context.store.db);
      expect((await context.audit.verify()).firstBreak).toMatchObject({ kind: 'unlinked', seq: 13 });
    });

    it('a deleted row', async () => {
      const context = await freshContext(dialect, cleanups);
      await fill(context, 20);
      await removeAppendOnlyGuard(context);
      await sql`delete from audit_events where seq = 7`.execute(context.store.db);
      expect((await context.audit.verify()).firstBreak).toMatchObject({ kind: 'missing', seq: 7 });
    });

    it('two rows reordered (sequence numbers swapped)', async () => {
      const context = await freshContext(dialect, cleanups);
      await fill(context, 20);
      await removeAppendOnlyGuard(context);
      await sql`update audit_events set seq = -1 where seq = 9`.execute(context.store.db);
      await sql`update audit_events set seq = 9 where seq = 10`.execute(context.store.db);
      await sql`update audit_events set seq = 10 where seq = -1`.execute(context.store.db);
      expect((await context.audit.verify()).firstBreak).toMatchObject({ kind: 'modified', seq: 9 });
    });

    it('the newest rows deleted (truncation)', async () => {
      const context = await freshContext(dialect, cleanups);
      await fill(context, 20);
      await removeAppendOnlyGuard(context);
      const head = (await context.audit.verify()).head;
      await sql`delete from audit_events where seq > ${(head?.seq ?? 0) - 3}`.execute(context.store.db);
      expect((await context.audit.verify()).firstBreak).toMatchObject({ kind: 'truncated', seq: (head?.seq ?? 0) - 2 });
    });

    it('a forged row appended past the head', async () => {
      const context = await freshContext(dialect, cleanups);
      await fill(context, 5);
      await removeAppendOnlyGuard(context);
      const [last] = await context.audit.list({ afterSeq: (await context.audit.verify()).checked - 1, limit: 1 });
      if (!last) throw new Error('no last row');
      await context.store.db
        .insertInto('audit_events')
        .values({ seq: last.seq + 1, ts: last.ts, actor: 'node', action: 'node.start', target: null, outcome: 'success', source: null, details: '{}', prev_hash: last.hash, hash: 'f'.repeat(64) })
        .execute();
      expect((await context.audit.verify()).firstBreak).toMatchObject({ kind: 'head-mismatch', seq: last.seq + 1 });
    });
  });
});
