import { FleetwardError, MAX_CUSTOM_METRICS, MAX_METRICS_BYTES, parseCustomMetrics, type CustomMetricValue, type DeviceMetricsReport } from '@fleetward/protocol';

/** The application's custom metrics, by name: numbers, or lists tagged with their kind (`{"address-list": [...]}`). */
export type CustomMetrics = Readonly<Record<string, CustomMetricValue>>;

/** A custom metric the agent did not send, and why; the report went out without it. */
export interface DroppedCustomMetric {
  /** Null when the application's source itself failed: no custom metric was sent this time. */
  readonly name: string | null;
  readonly reason: string;
}

export type OnCustomDropped = (dropped: DroppedCustomMetric) => void;

/**
 * The application's custom metrics the server's parser accepts, each checked alone after a trip
 * through JSON (what the gateway will see: no undefined, no sparse arrays, no NaN): one bad value
 * costs that metric, never the device's security report.
 */
export function acceptedCustomMetrics(values: unknown, dropped: OnCustomDropped): Record<string, CustomMetricValue> {
  const accepted: Record<string, CustomMetricValue> = {};
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    dropped({ name: null, reason: 'custom metrics must be an object of values by name' });
    return accepted;
  }
  for (const [name, value] of Object.entries(values)) {
    if (Object.keys(accepted).length === MAX_CUSTOM_METRICS) dropped({ name, reason: `more than ${MAX_CUSTOM_METRICS} custom metrics` });
    else {
      const checked = checkOne(name, value);
      if (typeof checked === 'string') dropped({ name, reason: checked });
      else accepted[name] = checked.value;
    }
  }
  return accepted;
}

/**
 * The report, with as many of its custom metrics as fit MAX_METRICS_BYTES: the largest go first,
 * so an oversized list costs itself, not the numbers beside it or the built-in security metrics.
 */
export function fitCustomMetrics(report: DeviceMetricsReport, dropped: OnCustomDropped): DeviceMetricsReport {
  if (byteLength(report) <= MAX_METRICS_BYTES) return report;
  const custom: Record<string, CustomMetricValue> = { ...report.custom };
  const largestFirst = Object.keys(custom).sort((a, b) => byteLength(custom[b]) - byteLength(custom[a]));
  for (const name of largestFirst) {
    delete custom[name];
    dropped({ name, reason: `the metrics report would be larger than ${MAX_METRICS_BYTES} bytes` });
    if (byteLength({ ...report, custom }) <= MAX_METRICS_BYTES) break;
  }
  return { ...report, custom };
}

function checkOne(name: string, value: unknown): { readonly value: CustomMetricValue } | string {
  let wire: unknown;
  try {
    wire = JSON.parse(JSON.stringify({ [name]: value }));
  } catch {
    return 'is not a JSON value';
  }
  try {
    const parsed = parseCustomMetrics(wire);
    const checked = parsed[name];
    // JSON.stringify leaves out undefined and functions: nothing would be sent under the name.
    return checked === undefined ? 'is not a JSON value' : { value: checked };
  } catch (error) {
    if (error instanceof FleetwardError) return error.message;
    throw error;
  }
}

function byteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '');
}
