import { generateKeyPairSync } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { chainHash } from '../../src/audit/audit-chain.js';
import { auditKeyId, publicKeyPem, signCheckpoint, trustedKey } from '../../src/audit/audit-checkpoint.js';
import { AuditCheckpoints, auditCheckpointJob } from '../../src/audit/audit-checkpoints.js';
import type { AuditEvent } from '../../src/audit/audit-events.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { NodeContext } from '../../src/node.js';
import { openStore, type Store } from '../../src/store/store.js';
import { DIALECTS, TestClock } from '../helpers/environment.js';
import { freshContext } from '../helpers/test-node.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function checkpointsOf(context: NodeContext, everyEvents = 0): AuditCheckpoints {
  return new AuditCheckpoints({ store: context.store, clock: context.clock, sealer: context.keyRing, everyEvents });
}

function event(n: number): AuditEvent {
  return { actor: `operator:o${n % 3}`, action: 'token.create', outcome: 'success', target: `token:t${n}`, details: { n } };
}

async function fill(context: NodeContext, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => context.audit.record(event(i))));
}

async function headSeq(context: NodeContext): Promise<number> {
  return (await context.store.db.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirstOrThrow()).seq;
}

/** What an attacker with owner rights on the database does first: drop the append-only guards. */
async function removeGuards(context: NodeContext): Promise<void> {
  for (const table of ['audit_events', 'audit_checkpoints']) {
    if (context.store.dialect === 'sqlite') {
      for (const op of ['update', 'delete']) await sql.raw(`drop trigger ${table}_no_${op}`).execute(context.store.db);
    } else {
      await sql.raw(`alter table ${table} disable trigger user`).execute(context.store.db);
    }
  }
}

/** Rewrites event `seq` and recomputes every hash after it and the head: invisible to the chain alone. */
async function rewriteAndRechain(context: NodeContext, seq: number): Promise<void> {
  const db = context.store.db;
  const rows = await db.selectFrom('audit_events').selectAll().where('seq', '>=', seq).orderBy('seq').execute();
  let prevHash = (await db.selectFrom('audit_events').select('hash').where('seq', '=', seq - 1).executeTakeFirstOrThrow()).hash;
  for (const row of rows) {
    const outcome = row.seq === seq ? 'denied' : row.outcome;
    const hash = chainHash({ seq: row.seq, ts: row.ts, actor: row.actor, action: row.action, target: row.target, outcome, source: row.source, details: row.details, prevHash });
    await db.updateTable('audit_events').set({ outcome, prev_hash: prevHash, hash }).where('seq', '=', row.seq).execute();
    prevHash = hash;
  }
  await db.updateTable('audit_head').set({ hash: prevHash }).where('id', '=', 1).execute();
}

describe.each(DIALECTS)('signed audit checkpoints on %s', (dialect) => {
  it('signs the head once per new head, verifies chain and checkpoints, and exports the public key', async () => {
    const context = await freshContext(dialect, cleanups);
    const checkpoints = checkpointsOf(context);
    await fill(context, 50);
    const first = await checkpoints.checkpoint();
    expect(first).toMatchObject({ number: 1, seq: await headSeq(context) });
    expect(await checkpoints.checkpoint()).toBeNull();
    await fill(context, 20);
    const job = auditCheckpointJob(checkpoints, 60);
    expect(job.everyMs).toBe(60_000);
    await job.run();
    await fill(context, 5);

    const result = await checkpoints.verify(context.audit);
    expect(result).toMatchObject({ ok: true, firstBreak: null, warnings: [] });
    expect(result.checkpoints).toMatchObject({ checked: 2, uncovered: 5, latest: { number: 2, seq: (await headSeq(context)) - 5 } });
    const keys = await checkpoints.keys();
    expect(keys).toHaveLength(1);
    expect(result.checkpoints.keys.map((k) => k.keyId)).toEqual([keys[0]?.keyId]);
    // An external party holding only the public key reaches the same verdict.
    const pinned = new Map([trustedKey(keys[0]?.publicKey ?? '')]);
    expect((await checkpoints.verify(context.audit, pinned)).ok).toBe(true);
  });

  it('an event rewritten and the whole chain recomputed: the chain alone passes, the checkpoint catches it', async () => {
    const context = await freshContext(dialect, cleanups);
    const checkpoints = checkpointsOf(context);
    await fill(context, 30);
    const c1 = await checkpoints.checkpoint();
    await fill(context, 30);
    const c2 = await checkpoints.checkpoint();
    await fill(context, 10);
    const target = (c1?.seq ?? 0) + 7;
    await removeGuards(context);
    await rewriteAndRechain(context, target);

    expect((await context.audit.verify()).ok).toBe(true);
    const result = await checkpoints.verify(context.audit);
    expect(result.ok).toBe(false);
    expect(result.firstBreak).toMatchObject({ kind: 'checkpoint-mismatch', seq: c2?.seq, checkpoint: 2 });
    expect(result.firstBreak?.message).toContain(`events ${(c1?.seq ?? 0) + 1}..${c2?.seq}`);
    expect(result.checkpoints.checked).toBe(1);
  });

  it('the events after a checkpoint deleted and the head reset: reported as truncated', async () => {
    const context = await freshContext(dialect, cleanups);
    const checkpoints = checkpointsOf(context);
    await fill(context, 20);
    const c1 = await checkpoints.checkpoint();
    await fill(context, 20);
    const c2 = await checkpoints.checkpoint();
    await removeGuards(context);
    const keep = (c1?.seq ?? 0) + 5;
    await context.store.db.deleteFrom('audit_events').where('seq', '>', keep).execute();
    const last = await context.store.db.selectFrom('audit_events').select('hash').where('seq', '=', keep).executeTakeFirstOrThrow();
    await context.store.db.updateTable('audit_head').set({ seq: keep, hash: last.hash }).where('id', '=', 1).execute();

    expect((await context.audit.verify()).ok).toBe(true);
    const result = await checkpoints.verify(context.audit);
    expect(result.firstBreak).toMatchObject({ kind: 'truncated', seq: keep + 1, checkpoint: 2 });
    expect(result.firstBreak?.message).toContain(`event ${c2?.seq}`);
  });

  it('a checkpoint forged without the key, or altered, or signed by a key planted in the database: refused', async () => {
    const context = await freshContext(dialect, cleanups);
    const checkpoints = checkpointsOf(context);
    await fill(context, 10);
    const c1 = await checkpoints.checkpoint();
    await removeGuards(context);
    const db = context.store.db;

    // Attacker's own key, planted as a signing key row (it cannot seal it with the node's key ring).
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const keyId = auditKeyId(publicKey);
    await db.insertInto('audit_signing_keys').values({ key_id: keyId, algorithm: 'Ed25519', public_key: publicKeyPem(publicKey), sealed_private_key: 'fwseal1.0000000000000000.AAAA.AAAA', created_at: '2026-01-01T00:00:00.000Z' }).execute();
    await fill(context, 10);
    const head = await db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirstOrThrow();
    const forged = signCheckpoint({ number: 2, seq: head.seq, hash: head.hash, ts: '2026-11-25T12:00:00.000Z', keyId }, privateKey);
    await db.insertInto('audit_checkpoints').values({ number: forged.number, seq: forged.seq, hash: forged.hash, ts: forged.ts, key_id: forged.keyId, signature: forged.signature }).execute();
    let result = await checkpoints.verify(context.audit);
    expect(result.firstBreak).toMatchObject({ kind: 'checkpoint-forged', checkpoint: 2 });
    expect(result.firstBreak?.message).toContain('not a trusted audit key');

    // A genuine checkpoint whose content was altered to match a rewritten trail.
    await db.deleteFrom('audit_checkpoints').where('number', '=', 2).execute();
    await db.updateTable('audit_checkpoints').set({ hash: 'f'.repeat(64) }).where('number', '=', 1).execute();
    result = await checkpoints.verify(context.audit);
    expect(result.firstBreak).toMatchObject({ kind: 'checkpoint-forged', checkpoint: 1, seq: c1?.seq });
    expect(result.firstBreak?.message).toContain('invalid signature');
  });

  it('checkpoints deleted: a gap, or all of them, is reported; deleting only the newest is visible only by its age', async () => {
    const context = await freshContext(dialect, cleanups);
    const checkpoints = checkpointsOf(context);
    for (let i = 0; i < 3; i++) {
      await fill(context, 5);
      await checkpoints.checkpoint();
    }
    await removeGuards(context);
    const db = context.store.db;
    await db.deleteFrom('audit_checkpoints').where('number', '=', 2).execute();
    expect((await checkpoints.verify(context.audit)).firstBreak).toMatchObject({ kind: 'checkpoint-missing', checkpoint: 2 });

    await db.deleteFrom('audit_checkpoints').where('number', '=', 3).execute();
    const tailCut = await checkpoints.verify(context.audit);
    expect(tailCut.ok).toBe(true);
    expect(tailCut.checkpoints).toMatchObject({ checked: 1, latest: { number: 1 } });
    expect(tailCut.checkpoints.uncovered).toBe(10);

    await db.deleteFrom('audit_checkpoints').execute();
    const none = await checkpoints.verify(context.audit);
    expect(none.ok).toBe(false);
    expect(none.firstBreak).toMatchObject({ kind: 'checkpoint-missing', checkpoint: 1 });
    expect(none.checkpoints.checked).toBe(0);
  });

  it('a trail that never had a checkpoint verifies, with a warning', async () => {
    const context = await freshContext(dialect, cleanups);
    const result = await checkpointsOf(context).verify(context.audit);
    expect(result.ok).toBe(true);
    expect(result.checkpoints.checked).toBe(0);
    expect(result.warnings[0]).toContain('no checkpoint');
  });

  it('several nodes checkpointing at once keep one gap-free sequence and one key', async () => {
    const context = await freshContext(dialect, cleanups);
    const stores: Store[] = [context.store];
    for (let i = 0; i < 2; i++) {
      const store = await openStore(
        dialect === 'sqlite'
          ? { kind: 'sqlite', file: context.layout.databaseFile }
          : { kind: 'postgres', url: context.config.database.url as string, schema: context.config.database.schema, poolSize: 4 },
      );
      cleanups.push(() => store.close());
      stores.push(store);
    }
    const nodes = stores.map((store) => ({ audit: new AuditLog(store, new TestClock()), checkpoints: new AuditCheckpoints({ store, clock: new TestClock(), sealer: context.keyRing }) }));
    for (let round = 0; round < 5; round++) {
      await Promise.all(nodes.map(async (node, i) => {
        await Promise.all(Array.from({ length: 10 }, (_, n) => node.audit.record(event(round * 100 + i * 10 + n))));
        await node.checkpoints.checkpoint();
      }));
    }
    const rows = await context.store.db.selectFrom('audit_checkpoints').select(['number', 'seq']).orderBy('number').execute();
    expect(rows.map((r) => r.number)).toEqual(rows.map((_, i) => i + 1));
    for (let i = 1; i < rows.length; i++) expect(rows[i]?.seq).toBeGreaterThan(rows[i - 1]?.seq ?? 0);
    expect(await context.store.db.selectFrom('audit_signing_keys').select('key_id').execute()).toHaveLength(1);
    expect((await nodes[1]?.checkpoints.verify(context.audit))?.ok).toBe(true);
  });

  it('checkpoints every N events, and the signing key survives a key-encryption-key rotation', async () => {
    const context = await freshContext(dialect, cleanups);
    const checkpoints = checkpointsOf(context, 40);
    const audit = new AuditLog(context.store, context.clock, (count) => checkpoints.noteAppended(count));
    await Promise.all(Array.from({ length: 100 }, (_, i) => audit.record(event(i))));
    await audit.flush();
    await checkpoints.settled();
    const count = await context.store.db.selectFrom('audit_checkpoints').select('number').execute();
    expect(count.length).toBeGreaterThanOrEqual(1);

    const rotated = context.keyRing.withNewActiveKey(new Date());
    expect(await AuditCheckpoints.reseal(context.store.db, rotated)).toBe(1);
    const afterRotation = new AuditCheckpoints({ store: context.store, clock: context.clock, sealer: rotated.withoutRetiredKeys() });
    const result = await afterRotation.verify(context.audit);
    expect(result.ok).toBe(true);
    expect(result.checkpoints.checked).toBe(count.length);
    // The old key ring no longer opens it: the key really was re-sealed.
    const stale = await checkpointsOf(context).verify(context.audit);
    expect(stale.firstBreak?.kind).toBe('checkpoint-forged');
  });
});
