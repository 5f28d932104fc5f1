import { Worker } from 'node:worker_threads';
import { batchStatements, type SightingCount } from './telemetry-sql.js';
import type { WriteReply, WriteRequest } from './telemetry-store-thread.js';
import type { TelemetryRecord } from './telemetry-writer.js';

/** A thread with nothing to write for this long ends (and is started again by the next batch). */
const IDLE_MS = 10_000;

/**
 * Writes telemetry batches to a SQLite file from a worker thread (telemetry-store-thread.ts).
 * better-sqlite3 is synchronous: on the event loop, each batch's inserts and commit (an fsync)
 * would stall every device connection of the node for their duration. The thread starts with
 * the first batch, holds the process open only while a batch is in flight, and ends when idle.
 */
export class SqliteWriterThread {
  readonly #file: string;
  #worker: Worker | null = null;
  readonly #waiting = new Map<number, { readonly resolve: () => void; readonly reject: (error: Error) => void }>();
  #nextId = 1;
  #idleTimer: NodeJS.Timeout | null = null;

  constructor(file: string) {
    this.#file = file;
  }

  write(records: readonly TelemetryRecord[], sightings: readonly SightingCount[]): Promise<void> {
    const worker = this.#start();
    const id = this.#nextId++;
    // Statements with flat parameters: primitives clone cheaply, nested records would not.
    const request: WriteRequest = { id, statements: batchStatements('sqlite', records, sightings) };
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage(request);
    });
  }

  /** Ends the thread (TelemetryWriter.close flushes first; a batch still in flight would be reported lost). */
  async close(): Promise<void> {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    const worker = this.#worker;
    this.#worker = null;
    await worker?.terminate();
  }

  #start(): Worker {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (this.#worker !== null) return this.#worker;
    const worker = startThread(new URL(`./telemetry-store-thread.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url), { file: this.#file });
    worker.on('message', (reply: WriteReply) => this.#answer(reply));
    worker.on('error', (error) => this.#fail(worker, error));
    worker.on('exit', (code) => this.#fail(worker, new Error(`the telemetry writer thread exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  #answer(reply: WriteReply): void {
    const waiting = this.#waiting.get(reply.id);
    this.#waiting.delete(reply.id);
    if (reply.ok) waiting?.resolve();
    else waiting?.reject(Object.assign(new Error(reply.message), { code: reply.code ?? undefined }));
    if (this.#waiting.size === 0 && this.#worker !== null) {
      const worker = this.#worker;
      worker.unref();
      this.#idleTimer = setTimeout(() => {
        if (this.#worker === worker && this.#waiting.size === 0) {
          this.#worker = null;
          void worker.terminate();
        }
      }, IDLE_MS).unref();
    }
  }

  /** A thread that died takes its batches with it: each is reported lost, and the next batch starts a new thread. */
  #fail(worker: Worker, error: Error): void {
    if (this.#worker === worker) this.#worker = null;
    for (const [id, waiting] of this.#waiting) {
      this.#waiting.delete(id);
      waiting.reject(error);
    }
  }
}

/**
 * Built, the thread is plain JavaScript. Run from the TypeScript sources (tests, benchmarks), it
 * registers the same loader (tsx) before loading its module: workers do not inherit it.
 */
function startThread(url: URL, workerData: unknown): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData });
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}
