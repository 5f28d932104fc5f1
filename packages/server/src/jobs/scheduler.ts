/** Work a node does on its own, periodically: refreshing CRLs, retiring superseded certificates, audits. */
export interface Job {
  readonly name: string;
  readonly everyMs: number;
  run(): Promise<unknown>;
}

/**
 * Runs each job at start and then every `everyMs`, never two runs of one job at once. A failing
 * run is reported and the job runs again at its next turn: background work must not stop a node.
 * Timers are unref'd, so they never keep a process alive.
 */
export class Scheduler {
  readonly #jobs: readonly Job[];
  readonly #onError: (job: string, error: unknown) => void;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #running = new Map<string, Promise<void>>();

  constructor(jobs: readonly Job[], onError: (job: string, error: unknown) => void) {
    this.#jobs = jobs;
    this.#onError = onError;
  }

  start(): void {
    for (const job of this.#jobs) {
      void this.#run(job);
      this.#timers.push(setInterval(() => void this.#run(job), job.everyMs).unref());
    }
  }

  /** Runs every job once now and waits for them (tests, and an operator's "run now"). */
  async runAll(): Promise<void> {
    await Promise.all(this.#jobs.map((job) => this.#run(job)));
  }

  /** Stops the timers and waits for runs in progress. */
  async stop(): Promise<void> {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    await Promise.all(this.#running.values());
  }

  #run(job: Job): Promise<void> {
    const running = this.#running.get(job.name);
    if (running) return running;
    const run = job
      .run()
      .then(
        () => undefined,
        (error: unknown) => this.#onError(job.name, error),
      )
      .finally(() => this.#running.delete(job.name));
    this.#running.set(job.name, run);
    return run;
  }
}
