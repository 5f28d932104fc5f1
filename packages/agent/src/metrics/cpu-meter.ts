import { cpuPercent, type CpuTimes } from './proc-system.js';

/**
 * Keeps the previous /proc/stat sample, so each report's CPU share covers the whole time since the
 * report before it: a spike between reports is averaged in, not missed by a short sample.
 */
export class CpuMeter {
  #previous: CpuTimes | null = null;

  /** The busy share since the previous sample, or null for the first sample (nothing to compare with). */
  next(times: CpuTimes): number | null {
    const previous = this.#previous;
    this.#previous = times;
    return previous === null ? null : cpuPercent(previous, times);
  }
}
