import { readFile } from 'node:fs/promises';
import { writePrivateFile } from '../identity/key-file.js';

interface Counts {
  restarts: number;
  localAuthFailures: number;
}

/** Counters that must survive restarts (they are security signals: a device restarting in a loop, failed local logins). */
export class CounterFile {
  readonly #file: string;
  readonly #counts: Counts;

  private constructor(file: string, counts: Counts) {
    this.#file = file;
    this.#counts = counts;
  }

  /** A missing or unreadable file starts from zero: counters are signals, not a reason to refuse to run. */
  static async open(file: string): Promise<CounterFile> {
    const counts: Counts = { restarts: 0, localAuthFailures: 0 };
    try {
      const saved = JSON.parse(await readFile(file, 'utf8')) as Partial<Counts>;
      for (const key of ['restarts', 'localAuthFailures'] as const) {
        const value = saved[key];
        if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) counts[key] = value;
      }
    } catch {
      // first start, or a corrupt file: start counting again
    }
    return new CounterFile(file, counts);
  }

  get restarts(): number {
    return this.#counts.restarts;
  }

  get localAuthFailures(): number {
    return this.#counts.localAuthFailures;
  }

  async recordRestart(): Promise<void> {
    this.#counts.restarts += 1;
    await this.#save();
  }

  async recordLocalAuthFailure(): Promise<void> {
    this.#counts.localAuthFailures += 1;
    await this.#save();
  }

  async #save(): Promise<void> {
    await writePrivateFile(this.#file, JSON.stringify(this.#counts));
  }
}
