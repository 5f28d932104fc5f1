import { format, formatTarget, markdownTable, meets, row, stats, type Row, type Target, type Unit } from '../lib/report.js';
import { serverLabels, type ServerName } from './servers.js';

/**
 * One metric measured on several brokers in the same runs. The engine is judged on its own figure
 * (`target`) or on its ratio to another broker's, taken run by run (`ratio`), so that both sides of
 * a ratio always saw the same machine at the same time.
 */
export interface Comparison {
  readonly key: string;
  readonly metric: string;
  readonly unit: Unit;
  readonly servers: readonly ServerName[];
  readonly ratio?: { readonly over: ServerName; readonly target: Target | null };
  readonly target?: Target;
}

/** Measurements by metric and broker, in run order; plus the connection errors met. */
export class Series {
  readonly #values = new Map<string, number[]>();
  readonly #errors: string[] = [];

  add(key: string, server: ServerName, value: number): void {
    const name = `${key}:${server}`;
    const values = this.#values.get(name) ?? [];
    values.push(value);
    this.#values.set(name, values);
  }

  values(key: string, server: ServerName): readonly number[] {
    return this.#values.get(`${key}:${server}`) ?? [];
  }

  /** The engine's figure over `over`'s, run by run. */
  ratios(key: string, over: ServerName): number[] {
    const engine = this.values(key, 'engine');
    const other = this.values(key, over);
    return engine.slice(0, other.length).map((value, index) => value / (other[index] as number));
  }

  error(text: string): void {
    this.#errors.push(text);
  }

  errors(): readonly string[] {
    return this.#errors;
  }

  toJSON(): Record<string, number[]> {
    return Object.fromEntries(this.#values);
  }
}

/** Rows for the harness: each broker's figure, then the ratio or the engine's target. */
export function comparisonRows(comparisons: readonly Comparison[], series: Series): Row[] {
  const rows: Row[] = [];
  for (const comparison of comparisons) {
    for (const server of comparison.servers) {
      const values = series.values(comparison.key, server);
      if (values.length === 0) continue;
      const target = server === 'engine' ? (comparison.target ?? null) : null;
      rows.push(row(`${comparison.metric}: ${serverLabels[server]}`, comparison.unit, values, target));
    }
    const ratio = comparison.ratio;
    if (ratio !== undefined) {
      const values = series.ratios(comparison.key, ratio.over);
      if (values.length > 0) rows.push(row(`${comparison.metric}: engine / ${serverLabels[ratio.over]}`, '×', values, ratio.target));
    }
  }
  return rows;
}

/** The comparison as one markdown table: a column per broker (median, min–max), the ratio, the target and the verdict. */
export function comparisonTable(comparisons: readonly Comparison[], series: Series): string {
  const servers: ServerName[] = ['engine', 'floor', 'mosquitto'];
  const judged = comparisons.some((c) => c.ratio !== undefined || c.target !== undefined);
  const headers = ['Metric', ...servers.map((server) => serverLabels[server]), ...(judged ? ['Ratio', 'Target', 'Result'] : [])];
  const lines = comparisons.map((comparison) => {
    const cells = servers.map((server) => cell(series.values(comparison.key, server), comparison.unit));
    if (!judged) return [comparison.metric, ...cells];
    let ratioCell = '–';
    let target: Target | null = comparison.target ?? null;
    let median: number | undefined = series.values(comparison.key, 'engine').length > 0 ? stats(series.values(comparison.key, 'engine')).median : undefined;
    let unit = comparison.unit;
    if (comparison.ratio !== undefined) {
      const ratios = series.ratios(comparison.key, comparison.ratio.over);
      ratioCell = ratios.length === 0 ? '–' : `${cell(ratios, '×')} of ${serverLabels[comparison.ratio.over]}`;
      target = comparison.ratio.target;
      median = ratios.length === 0 ? undefined : stats(ratios).median;
      unit = '×';
    }
    const result = target === null ? '–' : median === undefined ? 'FAIL' : meets(median, target) ? 'pass' : 'FAIL';
    return [comparison.metric, ...cells, ratioCell, formatTarget(target, unit), result];
  });
  return markdownTable(headers, lines);
}

function cell(values: readonly number[], unit: Unit): string {
  if (values.length === 0) return 'n/a';
  const measured = stats(values);
  return values.length === 1 ? format(measured.median, unit) : `${format(measured.median, unit)} (${format(measured.min, unit)}–${format(measured.max, unit)})`;
}
