import { performance } from 'node:perf_hooks';

/**
 * Spaces a writer's commits at least `intervalMs` apart (group commit). Each commit is a synced
 * write, about a millisecond of CPU on a virtual disk whatever it holds: under a stream of writes,
 * waiting a few milliseconds turns many commits into one. Idle, the next commit may start at once.
 */
export class CommitPacer {
  readonly #intervalMs: number;
  /** performance.now() when the last commit started. */
  #lastStartedAt = -Infinity;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** Call as a commit starts. */
  started(): void {
    this.#lastStartedAt = performance.now();
  }

  /** Resolves when the next commit may start: on the next turn of the event loop, or once the interval since the last start is over. */
  nextSlot(): Promise<void> {
    const wait = this.#lastStartedAt + this.#intervalMs - performance.now();
    return new Promise<void>((done) => (wait > 0 ? setTimeout(done, wait) : setImmediate(done)));
  }
}
