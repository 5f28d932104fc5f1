import { join } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';
import { writeCompactedLog } from './compact-log.js';
import { parseNewMessage, type NewQueuedMessage } from './parse-new-message.js';
import { DEFAULT_QUEUE_LIMITS, type OfflineQueueLimits, type QueueEntries } from './queue-entries.js';
import { nodeQueueFileSystem, type QueueFile, type QueueFileSystem } from './queue-file-system.js';
import { openQueueLog, prepareQueueFolder } from './queue-folder.js';
import { encodeRecord, type QueuedMessage, type QueuedProperties, type TrimRecord } from './queue-record.js';
import { replayLog } from './replay-log.js';

export type { NewQueuedMessage } from './parse-new-message.js';
export { DEFAULT_QUEUE_LIMITS, type OfflineQueueLimits } from './queue-entries.js';
export { nodeQueueFileSystem, type QueueFile, type QueueFileSystem, type QueuePathInfo } from './queue-file-system.js';
export type { QueuedMessage, QueuedProperties } from './queue-record.js';

export interface OfflineQueueOptions {
  /** Injectable for tests that need a full disk or a failing device. */
  readonly fileSystem?: QueueFileSystem;
  readonly clock?: { now(): Date };
  /**
   * `fsync` (default): an append resolves once its record is on stable storage, so it survives a
   * power cut. `write`: once the operating system holds it, which survives a crash or kill -9 of
   * the agent but not a power cut, in exchange for fewer flash writes. Concurrent appends share
   * one write and one fsync either way.
   */
  readonly durability?: 'fsync' | 'write';
  /** Dead bytes (acknowledged or dropped records) the log may hold before it is rewritten; default 1 MiB. */
  readonly compactAfterBytes?: number;
}

export interface AppendResult {
  readonly seq: number;
  /** Oldest messages dropped to make room for this one. */
  readonly dropped: number;
}

/** What `open` found and repaired; all zero for a log that was closed cleanly. */
export interface QueueRecovery {
  /** Damaged records skipped (the messages in them are lost; the ones around them are kept). */
  readonly corruptRecords: number;
  readonly corruptBytes: number;
  /** An unfinished last record (crash or power cut mid-write): its append never resolved, so it is discarded. */
  readonly tornTailBytes: number;
  /** Oldest messages dropped because the log held more than the current limits allow. */
  readonly droppedOverLimit: number;
}

const LOG_FILE = 'queue.log';
const COMPACT_FILE = 'queue.log.compact';
const DEFAULT_COMPACT_AFTER_BYTES = 1024 * 1024;

/** Two queues writing one log would corrupt it; this catches it within a process (one agent owns a folder). */
const openFolders = new Set<string>();

interface PendingAppend {
  readonly topic: string;
  readonly payload: Buffer;
  readonly properties: QueuedProperties | undefined;
  readonly enqueuedAt: string;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

type DiskState = Omit<TrimRecord, 'kind'>;

/**
 * The agent's store-and-forward queue: what the application publishes while offline is appended
 * to a log on disk and kept, in order, until it is acknowledged (PUBACK). Memory holds only what
 * the limits allow; when full, the oldest messages are dropped and counted. One append-only log
 * holds message records and trim records (acknowledged or dropped through a sequence number); it
 * is rewritten when dead records outweigh the live ones, so the file stays bounded.
 */
export class OfflineQueue {
  readonly #fs: QueueFileSystem;
  readonly #folder: string;
  readonly #limits: OfflineQueueLimits;
  readonly #clock: { now(): Date };
  readonly #sync: boolean;
  readonly #compactAfter: number;
  readonly #entries: QueueEntries;
  #file: QueueFile;
  #end: number;
  /** The file may hold bytes past `#end` (a failed write that could not be cut off yet). */
  #tailDirty = false;
  #nextSeq: number;
  #droppedTotal: number;
  /** Trim state the log on disk replays to; drops and sheds are recorded lazily, acks at once. */
  #disk: DiskState;
  #pending: PendingAppend[] = [];
  #pendingBytes = 0;
  #flushScheduled = false;
  #io: Promise<void> = Promise.resolve();
  #retryCompactionAt = 0;
  #closed: Promise<void> | null = null;
  readonly recovered: QueueRecovery;

  private constructor(init: {
    fs: QueueFileSystem;
    folder: string;
    limits: OfflineQueueLimits;
    options: OfflineQueueOptions;
    file: QueueFile;
    end: number;
    entries: QueueEntries;
    lastSeq: number;
    droppedTotal: number;
    disk: DiskState;
    recovered: QueueRecovery;
  }) {
    this.#fs = init.fs;
    this.#folder = init.folder;
    this.#limits = init.limits;
    this.#clock = init.options.clock ?? { now: () => new Date() };
    this.#sync = (init.options.durability ?? 'fsync') === 'fsync';
    this.#compactAfter = init.options.compactAfterBytes ?? DEFAULT_COMPACT_AFTER_BYTES;
    this.#file = init.file;
    this.#end = init.end;
    this.#entries = init.entries;
    this.#nextSeq = init.lastSeq + 1;
    this.#droppedTotal = init.droppedTotal;
    this.#disk = init.disk;
    this.recovered = init.recovered;
  }

  /**
   * Opens (or creates, 0700/0600) the queue in `directory` and reads it back: a torn last record
   * is cut off, damaged records are skipped and reported in `recovered` (then the log is rewritten
   * without them), and messages beyond the limits are dropped oldest first.
   */
  static async open(directory: string, limits: Partial<OfflineQueueLimits> = {}, options: OfflineQueueOptions = {}): Promise<OfflineQueue> {
    const effective = checkLimits({ ...DEFAULT_QUEUE_LIMITS, ...limits });
    const fs = options.fileSystem ?? nodeQueueFileSystem;
    const folder = await prepareQueueFolder(fs, directory);
    if (openFolders.has(folder)) throw new FleetwardError('FW_ERR_CONFLICT', `The queue in ${folder} is already open in this process`, { path: folder });
    openFolders.add(folder);
    try {
      // A rewrite interrupted by a crash: the log itself is intact until the rename.
      await fs.remove(join(folder, COMPACT_FILE));
      const file = await openQueueLog(fs, join(folder, LOG_FILE));
      try {
        const replay = await replayLog(file, effective.maxBytes);
        // What the log on disk replays to, before the current limits apply.
        const disk = { through: (replay.entries.oldest?.seq ?? replay.lastSeq + 1) - 1, droppedTotal: replay.droppedTotal };
        const droppedOverLimit = replay.entries.fit(effective);
        const queue = new OfflineQueue({
          fs,
          folder,
          limits: effective,
          options,
          file,
          end: replay.validEnd,
          entries: replay.entries,
          lastSeq: replay.lastSeq,
          droppedTotal: replay.droppedTotal + droppedOverLimit,
          disk,
          recovered: { corruptRecords: replay.corruptRecords, corruptBytes: replay.corruptBytes, tornTailBytes: replay.tornTailBytes, droppedOverLimit },
        });
        if (replay.tornTailBytes > 0) await queue.#cutTail();
        // Rewritten without the damaged records, so the next start does not report them again.
        if (replay.corruptRecords > 0) await queue.#tryCompaction();
        await fs.syncDirectory(folder);
        return queue;
      } catch (error) {
        await file.close().catch(() => undefined);
        throw error;
      }
    } catch (error) {
      openFolders.delete(folder);
      throw error instanceof FleetwardError ? error : unavailable(`Cannot open the queue in ${folder}`, error, { path: folder });
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Bytes of the queued records as stored; bounded by `maxBytes`. */
  get bytes(): number {
    return this.#entries.bytes;
  }

  /** Messages dropped unsent since the queue was created (full queue, memory shedding); survives restarts. */
  get droppedTotal(): number {
    return this.#droppedTotal;
  }

  /**
   * Queues a message. Resolves once its record is written (see `durability`), with its sequence
   * number and how many of the oldest messages were dropped to make room. Rejects with
   * FW_ERR_QUEUE_UNAVAILABLE when the disk refuses the write (nothing changes: the message is not
   * queued, nothing queued before is lost, and a later append works once there is space again),
   * FW_ERR_PAYLOAD_TOO_LARGE when the message alone exceeds `maxBytes`, FW_ERR_VALIDATION for a
   * topic that no broker would accept (it would block the queue's head forever).
   */
  async append(message: NewQueuedMessage): Promise<AppendResult> {
    this.#checkOpen();
    const { topic, payload, properties } = parseNewMessage(message);
    if (payload.length > this.#limits.maxBytes) throw tooLarge(payload.length, this.#limits.maxBytes);
    // Appends waiting for the disk are held in memory, so they are bounded by the same limits.
    if (this.#pending.length >= this.#limits.maxEntries || this.#pendingBytes + payload.length > this.#limits.maxBytes) {
      throw unavailable('Too many messages are waiting for the disk; await append before adding more', undefined, { pending: this.#pending.length });
    }
    const enqueuedAt = this.#clock.now().toISOString();
    return new Promise<AppendResult>((resolve, reject) => {
      this.#pending.push({ topic, payload, properties, enqueuedAt, resolve, reject });
      this.#pendingBytes += payload.length;
      if (this.#flushScheduled) return;
      this.#flushScheduled = true;
      void this.#serially(() => this.#flushAppends());
    });
  }

  /** The oldest `max` messages, oldest first; they stay queued until acknowledged. */
  peek(max: number): readonly QueuedMessage[] {
    return this.#entries.peek(max);
  }

  /**
   * Removes every message up to and including `seq` (delivered: PUBACK received) and records it on
   * disk. If the disk refuses (FW_ERR_QUEUE_UNAVAILABLE), the messages are gone from the queue all
   * the same and the record goes out with the next write; a restart before that delivers them
   * again, which QoS 1 allows.
   */
  async acknowledge(seq: number): Promise<void> {
    this.#checkOpen();
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= this.#nextSeq) {
      throw new FleetwardError('FW_ERR_VALIDATION', `Cannot acknowledge ${seq}: the queue has handed out sequence numbers up to ${this.#nextSeq - 1}`, { seq });
    }
    this.#entries.removeThrough(seq);
    await this.#serially(() => this.#flushTrim());
  }

  /**
   * Under memory pressure: drops the oldest messages until `keepEntries` remain and returns how
   * many went (counted in `droppedTotal`). Security checks are never what gives way; the queue is.
   * Recorded on disk with the next write; until then a restart brings them back, which loses nothing.
   */
  shed(keepEntries: number): number {
    if (!Number.isSafeInteger(keepEntries) || keepEntries < 0) {
      throw new FleetwardError('FW_ERR_VALIDATION', `shed needs a count of entries to keep, not ${keepEntries}`, { keepEntries });
    }
    const dropped = this.#entries.removeOldest(this.#entries.size - keepEntries);
    this.#droppedTotal += dropped;
    return dropped;
  }

  /** Writes what is pending and releases the file; the queue cannot be used afterwards. */
  close(): Promise<void> {
    this.#closed ??= this.#serially(async () => {
      try {
        await this.#flushTrim();
      } finally {
        await this.#file.close();
        openFolders.delete(this.#folder);
      }
    });
    return this.#closed;
  }

  #checkOpen(): void {
    if (this.#closed !== null) throw unavailable('The queue is closed', undefined, { path: this.#folder });
  }

  /** One file operation at a time, in call order: the log is written strictly sequentially. */
  #serially<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#io.then(step);
    this.#io = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Trimmed through this sequence number: everything before the oldest queued message. */
  #through(): number {
    return (this.#entries.oldest?.seq ?? this.#nextSeq) - 1;
  }

  #trimToRecord(): DiskState | null {
    const state = { through: this.#through(), droppedTotal: this.#droppedTotal };
    return state.through === this.#disk.through && state.droppedTotal === this.#disk.droppedTotal ? null : state;
  }

  /** Group commit: every append waiting when the file is free goes out in one write (and one fsync). */
  async #flushAppends(): Promise<void> {
    this.#flushScheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    try {
      await this.#writeBatch(batch);
    } catch (error) {
      // Settles whatever is still waiting (settling twice is a no-op), so no append hangs.
      for (const item of batch) item.reject(error);
    }
  }

  async #writeBatch(batch: readonly PendingAppend[]): Promise<void> {
    const accepted: { readonly item: PendingAppend; readonly message: QueuedMessage; readonly line: Buffer }[] = [];
    for (const item of batch) {
      const { topic, payload, properties, enqueuedAt } = item;
      const message: QueuedMessage = { seq: this.#nextSeq + accepted.length, topic, payload, enqueuedAt, ...(properties === undefined ? {} : { properties }) };
      const line = encodeRecord({ kind: 'message', message });
      if (line.length > this.#limits.maxBytes) {
        item.reject(tooLarge(line.length, this.#limits.maxBytes));
      } else {
        accepted.push({ item, message, line });
      }
    }
    if (accepted.length === 0) return;
    // Records of acks or drops not yet on disk go first: they describe the queue before this batch.
    const trim = this.#trimToRecord();
    const lines = accepted.map(({ line }) => line);
    try {
      await this.#write(trim === null ? lines : [encodeRecord({ kind: 'trim', ...trim }), ...lines], this.#sync);
    } catch (error) {
      for (const { item } of accepted) item.reject(error);
      return;
    }
    if (trim !== null) this.#disk = trim;
    this.#nextSeq += accepted.length;
    for (const { item, message, line } of accepted) {
      this.#entries.push(message, line.length);
      const dropped = this.#entries.fit(this.#limits);
      this.#droppedTotal += dropped;
      item.resolve({ seq: message.seq, dropped });
    }
    await this.#compactIfDue();
  }

  async #flushTrim(): Promise<void> {
    const trim = this.#trimToRecord();
    if (trim === null) return;
    // No fsync: losing an ack to a power cut means a duplicate delivery, which QoS 1 allows.
    await this.#write([encodeRecord({ kind: 'trim', ...trim })], false);
    this.#disk = trim;
    await this.#compactIfDue();
  }

  /** Appends records at the end of the log; on failure, cuts the file back so no partial record stays. */
  async #write(lines: readonly Buffer[], sync: boolean): Promise<void> {
    const data = Buffer.concat(lines);
    try {
      if (this.#tailDirty) await this.#file.truncate(this.#end);
      // From here until the write succeeds, the file may hold part of these records.
      this.#tailDirty = true;
      await this.#file.write(data, this.#end);
      if (sync) await this.#file.sync();
    } catch (error) {
      await this.#cutTail();
      throw unavailable(`Cannot write to the queue in ${this.#folder} (${errorCode(error)})`, error, { path: this.#folder, cause: errorCode(error) });
    }
    this.#tailDirty = false;
    this.#end += data.length;
  }

  /** Removes bytes past the last whole record; if even that fails, the next write retries first. */
  async #cutTail(): Promise<void> {
    try {
      await this.#file.truncate(this.#end);
      this.#tailDirty = false;
    } catch {
      this.#tailDirty = true;
    }
  }

  /**
   * Rewrites the log once dead records outweigh both the live ones and `compactAfterBytes`, so the
   * file stays under about twice the live size. A failed rewrite (disk full) changes nothing and
   * is retried after more dead bytes pile up; the append that triggered it has already succeeded.
   */
  async #compactIfDue(): Promise<void> {
    const dead = this.#end - this.#entries.bytes;
    if (dead >= Math.max(this.#compactAfter, this.#entries.bytes, this.#retryCompactionAt)) await this.#tryCompaction();
  }

  async #tryCompaction(): Promise<void> {
    try {
      await this.#compact();
      this.#retryCompactionAt = 0;
    } catch {
      this.#retryCompactionAt = this.#end - this.#entries.bytes + this.#compactAfter;
    }
  }

  async #compact(): Promise<void> {
    const checkpoint = { through: this.#through(), droppedTotal: this.#droppedTotal };
    const { file, bytes } = await writeCompactedLog(this.#fs, join(this.#folder, COMPACT_FILE), checkpoint, [...this.#entries]);
    try {
      await this.#fs.rename(join(this.#folder, COMPACT_FILE), join(this.#folder, LOG_FILE));
    } catch (error) {
      await file.close().catch(() => undefined);
      await this.#fs.remove(join(this.#folder, COMPACT_FILE)).catch(() => undefined);
      throw error;
    }
    const previous = this.#file;
    this.#file = file;
    this.#end = bytes;
    this.#tailDirty = false;
    this.#disk = checkpoint;
    await previous.close().catch(() => undefined);
    // The rename is already visible; if syncing the folder fails, a power cut could bring back the
    // previous log, which replays to a state with more messages, never fewer.
    await this.#fs.syncDirectory(this.#folder).catch(() => undefined);
  }
}

function checkLimits(limits: OfflineQueueLimits): OfflineQueueLimits {
  for (const name of ['maxEntries', 'maxBytes'] as const) {
    const value = limits[name];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new FleetwardError('FW_ERR_CONFIG_INVALID', `Queue limit ${name} must be a positive integer, not ${String(value)}`, { limit: name });
    }
  }
  return { maxEntries: limits.maxEntries, maxBytes: limits.maxBytes };
}

function tooLarge(bytes: number, maxBytes: number): FleetwardError {
  return new FleetwardError('FW_ERR_PAYLOAD_TOO_LARGE', `The message needs ${bytes} bytes in the queue, more than its maxBytes (${maxBytes})`, { bytes, maxBytes });
}

function unavailable(message: string, cause: unknown, details: Readonly<Record<string, unknown>> = {}): FleetwardError {
  return new FleetwardError('FW_ERR_QUEUE_UNAVAILABLE', message, details, { cause });
}

function errorCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'I/O error';
}
