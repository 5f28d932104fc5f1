/**
 * A one-line progress bar on stderr, redrawn in place when stderr is a terminal and silent
 * otherwise (logs and pipes get the final summary only).
 */
export class ProgressBar {
  readonly #label: string;
  readonly #total: number;
  readonly #started = Date.now();
  readonly #enabled: boolean;

  constructor(label: string, total: number, enabled = process.stderr.isTTY === true) {
    this.#label = label;
    this.#total = total;
    this.#enabled = enabled;
  }

  update(done: number, failed: number): void {
    if (!this.#enabled) return;
    const width = 30;
    const filled = this.#total === 0 ? width : Math.round((done / this.#total) * width);
    const seconds = (Date.now() - this.#started) / 1000;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    process.stderr.write(`\r${this.#label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done.toLocaleString('en')}/${this.#total.toLocaleString('en')}  ${failed} failed  ${rate}/s `);
  }

  finish(): void {
    if (this.#enabled) process.stderr.write('\n');
  }
}
