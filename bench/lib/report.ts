/** Shared helpers for the benchmark scenarios: statistics, targets, formatting and tables. */

export interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly runs: number;
}

export type Unit = 'ms' | 's' | 'MB' | 'MB/s' | 'events/s' | 'µs' | 'KiB' | 'MiB' | '×' | '%' | 'decisions/s';

/** A target the median must meet: `below` is strictly less than, `atMost` less or equal, `atLeast` greater or equal. */
export type Target = { readonly below: number } | { readonly atMost: number } | { readonly atLeast: number };

export type Verdict = 'pass' | 'FAIL' | 'info';

export interface Row {
  readonly metric: string;
  readonly unit: Unit;
  /** Null when the measurement could not be taken (see `note`). */
  readonly stats: Stats | null;
  readonly target: Target | null;
  readonly verdict: Verdict;
  readonly note?: string;
}

export interface ScenarioResult {
  readonly rows: readonly Row[];
  /** Per-run measurements and anything else worth keeping in the JSON file. */
  readonly raw: Readonly<Record<string, unknown>>;
  /** Markdown printed after the result table (a comparison, notes). */
  readonly summary?: string;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  run(): Promise<ScenarioResult>;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function stats(values: readonly number[]): Stats {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), runs: values.length };
}

/** A row judged on its median against the target (or `info` when there is none). */
export function row(metric: string, unit: Unit, values: readonly number[], target: Target | null = null, note?: string): Row {
  const measured = stats(values);
  const verdict: Verdict = target === null ? 'info' : meets(measured.median, target) ? 'pass' : 'FAIL';
  return { metric, unit, stats: measured, target, verdict, ...(note !== undefined && { note }) };
}

/** A row for a measurement that could not be taken. */
export function missingRow(metric: string, unit: Unit, target: Target | null, note: string): Row {
  return { metric, unit, stats: null, target, verdict: target === null ? 'info' : 'FAIL', note };
}

export function meets(value: number, target: Target): boolean {
  if ('below' in target) return value < target.below;
  if ('atMost' in target) return value <= target.atMost;
  return value >= target.atLeast;
}

export function format(value: number, unit: Unit): string {
  switch (unit) {
    case 'ms':
      return `${value.toFixed(0)} ms`;
    case 's':
      return `${value.toFixed(2)} s`;
    case 'MB':
      return `${value.toFixed(1)} MB`;
    case 'MB/s':
      return `${value.toFixed(0)} MB/s`;
    case 'events/s':
    case 'decisions/s':
      return `${Math.round(value).toLocaleString('en-US')}/s`;
    case 'µs':
      return `${value.toLocaleString('en-US', { maximumFractionDigits: value < 100 ? 2 : 0 })} µs`;
    case 'KiB':
      return `${value.toFixed(1)} KiB`;
    case 'MiB':
      return `${value.toFixed(0)} MiB`;
    case '×':
      return `${value.toFixed(2)}×`;
    case '%':
      return `${value.toFixed(0)} %`;
  }
}

export function formatTarget(target: Target | null, unit: Unit): string {
  if (target === null) return '–';
  if ('below' in target) return `< ${format(target.below, unit)}`;
  if ('atMost' in target) return `≤ ${format(target.atMost, unit)}`;
  return `≥ ${format(target.atLeast, unit)}`;
}

export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function resultTable(rows: readonly Row[]): string {
  return markdownTable(
    ['Metric', 'Target', 'Median', 'Min', 'Max', 'Runs', 'Result'],
    rows.map((r) => [
      r.note === undefined ? r.metric : `${r.metric} (${r.note})`,
      formatTarget(r.target, r.unit),
      r.stats ? format(r.stats.median, r.unit) : '–',
      r.stats ? format(r.stats.min, r.unit) : '–',
      r.stats ? format(r.stats.max, r.unit) : '–',
      r.stats ? String(r.stats.runs) : '0',
      r.verdict,
    ]),
  );
}

/** Progress goes to stderr so stdout holds only the result tables. */
export function progress(message: string): void {
  process.stderr.write(`  ${message}\n`);
}
