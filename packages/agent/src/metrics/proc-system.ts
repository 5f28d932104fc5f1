/**
 * Parsers of /proc/meminfo, /proc/stat and the /proc directory listing (proc(5)): text in, data out.
 */

export interface MemoryUsage {
  readonly totalBytes: number;
  readonly usedBytes: number;
}

/** Aggregate CPU time since boot, in clock ticks. */
export interface CpuTimes {
  readonly busy: number;
  readonly idle: number;
}

/**
 * Used memory is what is not available: MemAvailable counts reclaimable page cache as free (since
 * Linux 3.14), MemFree would call a healthy device with a warm cache full. Null when the text lacks
 * MemTotal or MemAvailable.
 */
export function parseMeminfo(text: string): MemoryUsage | null {
  const kib = (name: string) => {
    const match = new RegExp(`^${name}:[ \\t]+(\\d+) kB$`, 'm').exec(text);
    return match ? Number(match[1]) * 1024 : null;
  };
  const [total, available] = [kib('MemTotal'), kib('MemAvailable')];
  if (total === null || available === null || !Number.isSafeInteger(total)) return null;
  return { totalBytes: total, usedBytes: Math.max(0, total - Math.min(available, total)) };
}

/** The `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal (guest time is already in user). */
export function parseCpuTimes(text: string): CpuTimes | null {
  const match = /^cpu[ \t]+(\d+(?:[ \t]+\d+){3,})[ \t]*$/m.exec(text);
  if (!match) return null;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = (match[1] as string).split(/[ \t]+/).map(Number);
  // Waiting for I/O is idle CPU: counting it as busy would make a device with a slow disk look loaded.
  return { busy: user + nice + system + irq + softirq + steal, idle: idle + iowait };
}

/** Busy share between two samples, 0 to 100 (0 when no tick passed in between). */
export function cpuPercent(before: CpuTimes, after: CpuTimes): number {
  const busy = Math.max(0, after.busy - before.busy);
  const idle = Math.max(0, after.idle - before.idle);
  return busy + idle === 0 ? 0 : Math.round((busy / (busy + idle)) * 1000) / 10;
}

/** Processes are the numeric entries of /proc (threads live under /proc/<pid>/task and are not counted). */
export function countProcesses(entries: readonly string[]): number {
  return entries.filter((name) => /^[1-9]\d*$/.test(name)).length;
}
