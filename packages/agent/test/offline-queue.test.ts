import { spawn } from 'node:child_process';
import { appendFile, chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeQueueFileSystem, OfflineQueue, type OfflineQueueLimits, type OfflineQueueOptions, type QueueFileSystem } from '../src/queue/offline-queue.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const APPENDER = fileURLToPath(new URL('./fixtures/queue-appender.ts', import.meta.url));
const TOPIC = 'fleet/sensor-1/telemetry';

let root: string;
let opened: OfflineQueue[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'fw-queue-'));
});

afterEach(async () => {
  for (const queue of opened) await queue.close().catch(() => undefined);
  opened = [];
  await rm(root, { recursive: true, force: true });
});

async function openQueue(directory = join(root, 'queue'), limits: Partial<OfflineQueueLimits> = {}, options: OfflineQueueOptions = {}): Promise<OfflineQueue> {
  const queue = await OfflineQueue.open(directory, limits, options);
  opened.push(queue);
  return queue;
}

async function reopen(queue: OfflineQueue, directory = join(root, 'queue'), limits: Partial<OfflineQueueLimits> = {}, options: OfflineQueueOptions = {}): Promise<OfflineQueue> {
  await queue.close();
  return openQueue(directory, limits, options);
}

function payloads(queue: OfflineQueue): string[] {
  return queue.peek(Number.MAX_SAFE_INTEGER).map((message) => message.payload.toString());
}

function seqs(queue: OfflineQueue): number[] {
  return queue.peek(Number.MAX_SAFE_INTEGER).map((message) => message.seq);
}

async function appendAll(queue: OfflineQueue, texts: readonly string[]): Promise<void> {
  for (const text of texts) await queue.append({ topic: TOPIC, payload: Buffer.from(text) });
}

interface Failure {
  on: 'write' | 'sync' | null;
  code: string;
  /** Only files whose path ends so fail; all of them when unset. */
  pathEnding?: string;
}

/** The real file system, except that writes (or fsyncs) fail like a full disk or a dying card while `failure.on` is set. */
function failingFileSystem(): { fileSystem: QueueFileSystem; failure: Failure } {
  const failure: Failure = { on: null, code: 'ENOSPC' };
  const fail = (operation: string): Error => Object.assign(new Error(`${failure.code}: ${operation} failed`), { code: failure.code });
  const fileSystem: QueueFileSystem = {
    ...nodeQueueFileSystem,
    async openFile(path) {
      const file = await nodeQueueFileSystem.openFile(path);
      const failing = (): boolean => failure.pathEnding === undefined || path.endsWith(failure.pathEnding);
      return {
        ...file,
        async write(data, position) {
          if (failure.on !== 'write' || !failing()) return file.write(data, position);
          // A full disk takes part of a write before refusing the rest.
          await file.write(data.subarray(0, Math.ceil(data.length / 2)), position);
          throw fail('write');
        },
        async sync() {
          if (failure.on === 'sync' && failing()) throw fail('fsync');
          return file.sync();
        },
      };
    },
  };
  return { fileSystem, failure };
}

describe('OfflineQueue: order and acknowledgement', () => {
  it('keeps messages in order with their topic, payload, time and properties across close and reopen', async () => {
    const clock = { now: () => new Date('2025-03-01T12:00:00.000Z') };
    let queue = await openQueue(undefined, {}, { clock });
    const payload = Buffer.from([0, 1, 2, 0x0a, 0xff]);
    await queue.append({ topic: 'fleet/a', payload });
    payload[0] = 42; // the caller reusing its buffer must not change what was queued
    await queue.append({ topic: 'fleet/b', payload: Buffer.from('{"t":21.5}'), properties: { contentType: 'application/json', userProperties: { unit: 'C' } } });
    await queue.append({ topic: 'fleet/c', payload: Buffer.alloc(0) });
    queue = await reopen(queue);
    expect(queue.peek(10)).toEqual([
      { seq: 1, topic: 'fleet/a', payload: Buffer.from([0, 1, 2, 0x0a, 0xff]), enqueuedAt: '2025-03-01T12:00:00.000Z' },
      { seq: 2, topic: 'fleet/b', payload: Buffer.from('{"t":21.5}'), enqueuedAt: '2025-03-01T12:00:00.000Z', properties: { contentType: 'application/json', userProperties: { unit: 'C' } } },
      { seq: 3, topic: 'fleet/c', payload: Buffer.alloc(0), enqueuedAt: '2025-03-01T12:00:00.000Z' },
    ]);
    expect(queue.peek(2).map((message) => message.seq)).toEqual([1, 2]);
    expect(queue.size).toBe(3);
    expect(queue.recovered).toEqual({ corruptRecords: 0, corruptBytes: 0, tornTailBytes: 0, droppedOverLimit: 0 });
  });

  it('acknowledge removes exactly the messages up to seq, and the removal survives a restart', async () => {
    let queue = await openQueue();
    await appendAll(queue, ['m1', 'm2', 'm3', 'm4', 'm5']);
    await queue.acknowledge(2);
    expect(seqs(queue)).toEqual([3, 4, 5]);
    await queue.acknowledge(2); // a repeated PUBACK changes nothing
    expect(seqs(queue)).toEqual([3, 4, 5]);
    queue = await reopen(queue);
    expect(payloads(queue)).toEqual(['m3', 'm4', 'm5']);
    await expect(queue.acknowledge(6)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    expect(seqs(queue)).toEqual([3, 4, 5]);
    await queue.acknowledge(5);
    expect(queue.size).toBe(0);
    queue = await reopen(queue);
    expect(queue.size).toBe(0);
    expect(await queue.append({ topic: TOPIC, payload: Buffer.from('m6') })).toEqual({ seq: 6, dropped: 0 });
  });

  it('keeps sequence numbers increasing across restarts even when every rewrite leaves an empty log', async () => {
    let queue = await openQueue(undefined, {}, { compactAfterBytes: 1 });
    for (let round = 1; round <= 3; round++) {
      const { seq } = await queue.append({ topic: TOPIC, payload: Buffer.from(`round ${round}`) });
      expect(seq).toBe(round);
      await queue.acknowledge(seq);
      queue = await reopen(queue, undefined, {}, { compactAfterBytes: 1 });
      expect(queue.size).toBe(0);
    }
  });

  it('refuses a topic no broker would accept, so it cannot block the head of the queue', async () => {
    const queue = await openQueue();
    for (const topic of ['', 'fleet/+/x', 'fleet/#', 'a\u0000b']) {
      await expect(queue.append({ topic, payload: Buffer.from('x') })).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    }
    expect(queue.size).toBe(0);
  });
});

describe('OfflineQueue: crashes', () => {
  it('keeps every append that resolved when the process is killed with SIGKILL, in order, and discards a torn last record', async () => {
    const directory = join(root, 'queue');
    const child = spawn(process.execPath, ['--import', 'tsx', APPENDER, directory], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const reported: { seq: number; n: number }[] = [];
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const lines = stdout.split('\n');
      stdout = lines.pop() ?? '';
      for (const line of lines) {
        const [seq, n] = line.split(' ').map(Number);
        reported.push({ seq: seq ?? NaN, n: n ?? NaN });
      }
      if (reported.length >= 1500 && child.exitCode === null) child.kill('SIGKILL');
    });
    const signal = await exited;
    expect(signal, `the appender died on its own: ${stderr}`).toBe('SIGKILL');
    expect(reported.length).toBeGreaterThanOrEqual(1500);

    // A power cut in the middle of the next record: half a line, no newline.
    const torn = '5c0642ba {"k":"msg","seq":999999,"at":"2025-03-01T12:00:00.000Z","topic":"fleet/x","pay';
    await appendFile(join(directory, 'queue.log'), torn);

    let queue = await openQueue(directory);
    expect(queue.recovered).toMatchObject({ corruptRecords: 0, tornTailBytes: torn.length });
    const entries = queue.peek(Number.MAX_SAFE_INTEGER);
    const payloadOf = new Map(entries.map((message) => [message.seq, message.payload.toString()]));
    for (const { seq, n } of reported) expect(payloadOf.get(seq)).toBe(`msg-${n}`);
    // In order and without gaps: seq k carries the k-th message handed over.
    expect(entries.length).toBeGreaterThanOrEqual(reported.length);
    entries.forEach((message, index) => {
      expect(message.seq).toBe(index + 1);
      expect(message.payload.toString()).toBe(`msg-${index}`);
    });

    const { seq } = await queue.append({ topic: TOPIC, payload: Buffer.from('after the crash') });
    expect(seq).toBe(entries.length + 1);
    queue = await reopen(queue, directory);
    expect(queue.recovered).toEqual({ corruptRecords: 0, corruptBytes: 0, tornTailBytes: 0, droppedOverLimit: 0 });
    expect(queue.size).toBe(entries.length + 1);
    expect(queue.peek(Number.MAX_SAFE_INTEGER).at(-1)?.payload.toString()).toBe('after the crash');
  }, 60_000);

  it('skips a damaged record in the middle, keeps the ones around it, reports it once and rewrites the log', async () => {
    let queue = await openQueue();
    await appendAll(queue, ['m1', 'm2', 'm3', 'm4', 'm5']);
    await queue.close();
    const file = join(root, 'queue', 'queue.log');
    const bytes = await readFile(file);
    const thirdLine = bytes.indexOf('\n', bytes.indexOf('\n') + 1) + 1;
    bytes[thirdLine + 40] = (bytes[thirdLine + 40] ?? 0) ^ 0x20;
    await writeFile(file, bytes);

    queue = await openQueue();
    expect(queue.recovered).toMatchObject({ corruptRecords: 1, tornTailBytes: 0 });
    expect(payloads(queue)).toEqual(['m1', 'm2', 'm4', 'm5']);
    expect(seqs(queue)).toEqual([1, 2, 4, 5]);
    expect((await queue.append({ topic: TOPIC, payload: Buffer.from('m6') })).seq).toBe(6);
    queue = await reopen(queue);
    expect(queue.recovered.corruptRecords).toBe(0);
    expect(payloads(queue)).toEqual(['m1', 'm2', 'm4', 'm5', 'm6']);
  });

  it('ignores a rewrite that a crash interrupted: the log it was replacing is still whole', async () => {
    let queue = await openQueue();
    await appendAll(queue, ['m1', 'm2']);
    await queue.close();
    await writeFile(join(root, 'queue', 'queue.log.compact'), 'half a rewri');
    queue = await openQueue();
    expect(payloads(queue)).toEqual(['m1', 'm2']);
    await expect(stat(join(root, 'queue', 'queue.log.compact'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('opens a file of garbage as an empty queue that reports the damage, and keeps working', async () => {
    const directory = join(root, 'queue');
    await mkdir(directory, { mode: 0o700 });
    await writeFile(join(directory, 'queue.log'), Buffer.concat([Buffer.from('not a queue\n'), Buffer.alloc(3000, 0xa5), Buffer.from('\n{"k":"msg"}\n')]));
    let queue = await openQueue(directory, { maxBytes: 2048 });
    expect(queue.recovered.corruptRecords).toBe(3);
    expect(queue.size).toBe(0);
    await appendAll(queue, ['fresh']);
    queue = await reopen(queue, directory, { maxBytes: 2048 });
    expect(payloads(queue)).toEqual(['fresh']);
  });

  it('loses at most the records a flipped byte touches, reports the loss, and keeps the rest in order (property)', async () => {
    const original = ['m1', 'm2', 'm3', 'm4', 'm5'];
    let queue = await openQueue(join(root, 'template'));
    await appendAll(queue, original);
    await queue.close();
    const template = await readFile(join(root, 'template', 'queue.log'));
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: template.length - 1 }), fc.integer({ min: 1, max: 255 }), async (offset, mask) => {
        const directory = join(root, `flip-${run++}`);
        await mkdir(directory, { mode: 0o700 });
        const damaged = Buffer.from(template);
        damaged[offset] = (damaged[offset] ?? 0) ^ mask;
        await writeFile(join(directory, 'queue.log'), damaged);
        queue = await openQueue(directory);
        const kept = payloads(queue);
        await queue.close();
        expect(kept).toEqual(original.filter((text) => kept.includes(text)));
        expect(original.length - kept.length).toBeLessThanOrEqual(2);
        if (kept.length < original.length) expect(queue.recovered.corruptRecords + queue.recovered.tornTailBytes).toBeGreaterThan(0);
      }),
      { numRuns: 60 },
    );
  });
});

describe('OfflineQueue: limits', () => {
  it('drops the oldest messages when maxEntries is reached, reports how many, and counts them across restarts', async () => {
    let queue = await openQueue(undefined, { maxEntries: 3 });
    const results = [];
    for (const text of ['m1', 'm2', 'm3', 'm4', 'm5']) results.push(await queue.append({ topic: TOPIC, payload: Buffer.from(text) }));
    expect(results.map((result) => result.dropped)).toEqual([0, 0, 0, 1, 1]);
    expect(payloads(queue)).toEqual(['m3', 'm4', 'm5']);
    expect(queue.droppedTotal).toBe(2);
    queue = await reopen(queue, undefined, { maxEntries: 3 });
    expect(payloads(queue)).toEqual(['m3', 'm4', 'm5']);
    expect(queue.droppedTotal).toBe(2);
    // Lower limits after a restart drop the oldest at once, counted like any other drop.
    queue = await reopen(queue, undefined, { maxEntries: 1 });
    expect(payloads(queue)).toEqual(['m5']);
    expect(queue.recovered.droppedOverLimit).toBe(2);
    expect(queue.droppedTotal).toBe(4);
  });

  it('drops the oldest messages when maxBytes is reached and refuses a message that could never fit', async () => {
    const probe = await openQueue(join(root, 'probe'));
    await probe.append({ topic: TOPIC, payload: Buffer.alloc(100, 1) });
    const recordBytes = probe.bytes;
    let queue = await openQueue(undefined, { maxBytes: Math.floor(recordBytes * 3.5) });
    const dropped = [];
    for (let i = 1; i <= 6; i++) dropped.push((await queue.append({ topic: TOPIC, payload: Buffer.alloc(100, i) })).dropped);
    expect(dropped).toEqual([0, 0, 0, 1, 1, 1]);
    expect(queue.peek(10).map((message) => message.payload[0])).toEqual([4, 5, 6]);
    expect(queue.bytes).toBe(recordBytes * 3);
    await expect(queue.append({ topic: TOPIC, payload: Buffer.alloc(recordBytes * 4) })).rejects.toMatchObject({ code: 'FW_ERR_PAYLOAD_TOO_LARGE' });
    await expect(queue.append({ topic: TOPIC, payload: Buffer.alloc(recordBytes * 3) })).rejects.toMatchObject({ code: 'FW_ERR_PAYLOAD_TOO_LARGE' });
    expect(queue.peek(10).map((message) => message.payload[0])).toEqual([4, 5, 6]);
    queue = await reopen(queue, undefined, { maxBytes: Math.floor(recordBytes * 3.5) });
    expect(queue.droppedTotal).toBe(3);
    expect(queue.peek(10).map((message) => message.seq)).toEqual([4, 5, 6]);
  });

  it('sheds the oldest messages under memory pressure, counts them, and remembers it after a clean restart', async () => {
    let queue = await openQueue();
    await appendAll(queue, Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
    expect(queue.shed(4)).toBe(6);
    expect(payloads(queue)).toEqual(['m7', 'm8', 'm9', 'm10']);
    expect(queue.droppedTotal).toBe(6);
    expect(queue.shed(10)).toBe(0);
    expect(() => queue.shed(-1)).toThrow(expect.objectContaining({ code: 'FW_ERR_VALIDATION' }) as Error);
    queue = await reopen(queue);
    expect(payloads(queue)).toEqual(['m7', 'm8', 'm9', 'm10']);
    expect(queue.droppedTotal).toBe(6);
  });

  it('bounds appends that are not awaited: beyond the limits they are refused, not buffered in memory', async () => {
    const queue = await openQueue(undefined, { maxEntries: 3 });
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => queue.append({ topic: TOPIC, payload: Buffer.from(`m${i + 1}`) })));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect(outcomes[3]).toMatchObject({ reason: { code: 'FW_ERR_QUEUE_UNAVAILABLE' } });
    expect(payloads(queue)).toEqual(['m1', 'm2', 'm3']);
  });

  it('keeps the log file bounded by rewriting it over 50,000 append/acknowledge cycles', async () => {
    let queue = await openQueue(undefined, {}, { durability: 'write' });
    const file = join(root, 'queue', 'queue.log');
    const backlog = 50;
    let largest = 0;
    const started = performance.now();
    for (let i = 1; i <= 50_000; i++) {
      const { seq } = await queue.append({ topic: TOPIC, payload: Buffer.from(`{"reading":${i}}`) });
      if (seq > backlog) await queue.acknowledge(seq - backlog);
      if (i % 1000 === 0) largest = Math.max(largest, (await stat(file)).size);
    }
    const elapsedMs = performance.now() - started;
    console.log(`offline queue: 50,000 append+ack cycles in ${Math.round(elapsedMs)} ms; largest log ${largest} bytes`);
    // Rewritten once dead records pass 1 MiB (the default): the file stays under that plus the
    // live backlog (50 records, about 6 KiB); without rewriting, 100,000 records take about 6 MiB.
    expect(largest).toBeLessThan(1024 * 1024 + 16 * 1024);
    queue = await reopen(queue);
    expect(seqs(queue)).toEqual(Array.from({ length: backlog }, (_, i) => 50_000 - backlog + 1 + i));
    expect(payloads(queue).at(-1)).toBe('{"reading":50000}');
  }, 120_000);
});

describe('OfflineQueue: a full or failing disk', () => {
  it.each([
    { name: 'disk full during the write', on: 'write' as const, code: 'ENOSPC' },
    { name: 'I/O error on fsync', on: 'sync' as const, code: 'EIO' },
  ])('$name: the append rejects with FW_ERR_QUEUE_UNAVAILABLE, nothing queued is lost, and it works again afterwards', async ({ on, code }) => {
    const { fileSystem, failure } = failingFileSystem();
    let queue = await openQueue(undefined, {}, { fileSystem });
    await appendAll(queue, ['m1', 'm2', 'm3']);
    failure.on = on;
    failure.code = code;
    const error = await queue.append({ topic: TOPIC, payload: Buffer.from('lost?') }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'FW_ERR_QUEUE_UNAVAILABLE', details: { cause: code } });
    expect((error as { spec: { http: number } }).spec.http).toBe(507);
    expect(payloads(queue)).toEqual(['m1', 'm2', 'm3']);

    failure.on = null;
    expect(await queue.append({ topic: TOPIC, payload: Buffer.from('m4') })).toEqual({ seq: 4, dropped: 0 });
    queue = await reopen(queue);
    // No trace of the refused record: no torn tail, no damaged line, no extra message.
    expect(queue.recovered).toEqual({ corruptRecords: 0, corruptBytes: 0, tornTailBytes: 0, droppedOverLimit: 0 });
    expect(payloads(queue)).toEqual(['m1', 'm2', 'm3', 'm4']);
  });

  it('keeps working when rewriting the log fails, and rewrites it once space is back', async () => {
    const { fileSystem, failure } = failingFileSystem();
    const options = { fileSystem, compactAfterBytes: 1, durability: 'write' as const };
    let queue = await openQueue(undefined, {}, options);
    const log = join(root, 'queue', 'queue.log');
    Object.assign(failure, { on: 'write', pathEnding: '.compact' });
    for (let i = 1; i <= 20; i++) {
      const { seq } = await queue.append({ topic: TOPIC, payload: Buffer.from(`m${i}`) });
      if (seq > 2) await queue.acknowledge(seq - 2);
    }
    const grown = (await stat(log)).size;
    expect(grown).toBeGreaterThan(queue.bytes * 5);
    failure.on = null;
    await appendAll(queue, ['m21']);
    // The next rewrite is tried once more dead records pile up, here with the next acknowledgement.
    await queue.acknowledge(19);
    expect((await stat(log)).size).toBeLessThan(grown);
    queue = await reopen(queue, undefined, {}, options);
    expect(payloads(queue)).toEqual(['m20', 'm21']);
    await expect(stat(join(root, 'queue', 'queue.log.compact'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('opens on a full disk without failing (no crash loop) and serves what it holds', async () => {
    let queue = await openQueue();
    await appendAll(queue, ['m1', 'm2']);
    await queue.close();
    const { fileSystem, failure } = failingFileSystem();
    failure.on = 'write';
    queue = await openQueue(undefined, {}, { fileSystem });
    expect(payloads(queue)).toEqual(['m1', 'm2']);
    await expect(queue.append({ topic: TOPIC, payload: Buffer.from('m3') })).rejects.toMatchObject({ code: 'FW_ERR_QUEUE_UNAVAILABLE' });
    failure.on = null;
    await appendAll(queue, ['m3']);
    queue = await reopen(queue);
    expect(payloads(queue)).toEqual(['m1', 'm2', 'm3']);
  });
});

describe('OfflineQueue: who may touch the queue', () => {
  it('creates the folder 0700 and the log 0600, and tightens a log someone loosened', async () => {
    let queue = await openQueue();
    await appendAll(queue, ['m1']);
    expect((await stat(join(root, 'queue'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(root, 'queue', 'queue.log'))).mode & 0o777).toBe(0o600);
    await queue.close();
    await chmod(join(root, 'queue', 'queue.log'), 0o644);
    queue = await openQueue();
    expect((await stat(join(root, 'queue', 'queue.log'))).mode & 0o777).toBe(0o600);
  });

  it.each([
    { mode: 0o777, name: '0777' },
    { mode: 0o770, name: '0770' },
    { mode: 0o702, name: '0702' },
  ])('refuses a folder that others can write to (mode $name): they could plant messages the device would publish', async ({ mode }) => {
    const directory = join(root, 'shared');
    await mkdir(directory);
    await chmod(directory, mode);
    await expect(OfflineQueue.open(directory)).rejects.toMatchObject({ code: 'FW_ERR_HOME_INSECURE', details: { path: directory } });
  });

  it('refuses a log that is a symbolic link, leaving its target untouched', async () => {
    const directory = join(root, 'queue');
    await mkdir(directory, { mode: 0o700 });
    const target = join(root, 'elsewhere');
    await writeFile(target, 'precious');
    await symlink(target, join(directory, 'queue.log'));
    await expect(OfflineQueue.open(directory)).rejects.toMatchObject({ code: 'FW_ERR_HOME_INSECURE' });
    expect(await readFile(target, 'utf8')).toBe('precious');
  });

  it('refuses to open a folder a second time in the same process, and rejects use after close', async () => {
    const queue = await openQueue();
    await expect(OfflineQueue.open(join(root, 'queue'))).rejects.toMatchObject({ code: 'FW_ERR_CONFLICT' });
    await queue.close();
    await expect(queue.append({ topic: TOPIC, payload: Buffer.from('late') })).rejects.toMatchObject({ code: 'FW_ERR_QUEUE_UNAVAILABLE' });
    const again = await openQueue();
    expect(again.size).toBe(0);
  });
});

type Operation =
  | { readonly op: 'append'; readonly count: number }
  | { readonly op: 'ack'; readonly pick: number }
  | { readonly op: 'shed'; readonly keep: number }
  | { readonly op: 'reopen' };

describe('OfflineQueue: model', () => {
  it('matches a simple in-memory model under any interleaving of append, acknowledge, shed and reopen (property)', async () => {
    const operation = fc.oneof(
      fc.record({ op: fc.constant('append' as const), count: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ op: fc.constant('ack' as const), pick: fc.nat({ max: 6 }) }),
      fc.record({ op: fc.constant('shed' as const), keep: fc.nat({ max: 6 }) }),
      fc.constant({ op: 'reopen' as const }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { maxLength: 25 }), fc.constantFrom(1, 300, 1 << 20), async (operations: Operation[], compactAfterBytes) => {
        const directory = join(root, `model-${run++}`);
        const limits = { maxEntries: 5 };
        const options = { durability: 'write' as const, compactAfterBytes };
        let queue = await openQueue(directory, limits, options);
        const model = { entries: [] as { seq: number; text: string }[], nextSeq: 1, dropped: 0 };
        for (const step of operations) {
          if (step.op === 'append') {
            // Appends issued together share one write; each still gets its own place and drop count.
            const texts = Array.from({ length: step.count }, (_, i) => `p${model.nextSeq + i}`);
            const results = await Promise.all(texts.map((text) => queue.append({ topic: TOPIC, payload: Buffer.from(text) })));
            const expected = texts.map((text) => {
              model.entries.push({ seq: model.nextSeq++, text });
              const dropped = Math.max(0, model.entries.length - limits.maxEntries);
              model.entries.splice(0, dropped);
              model.dropped += dropped;
              return { seq: model.nextSeq - 1, dropped };
            });
            expect(results).toEqual(expected);
          } else if (step.op === 'ack') {
            const seq = model.entries[Math.min(step.pick, model.entries.length - 1)]?.seq ?? model.nextSeq - 1;
            await queue.acknowledge(seq);
            model.entries = model.entries.filter((entry) => entry.seq > seq);
          } else if (step.op === 'shed') {
            const expected = Math.max(0, model.entries.length - step.keep);
            expect(queue.shed(step.keep)).toBe(expected);
            model.entries.splice(0, expected);
            model.dropped += expected;
          } else {
            queue = await reopen(queue, directory, limits, options);
            expect(queue.recovered).toEqual({ corruptRecords: 0, corruptBytes: 0, tornTailBytes: 0, droppedOverLimit: 0 });
          }
          expect(queue.peek(100).map((message) => ({ seq: message.seq, text: message.payload.toString() }))).toEqual(model.entries);
          expect(queue.droppedTotal).toBe(model.dropped);
        }
        await queue.close();
      }),
      { numRuns: 60 },
    );
  }, 120_000);
});
