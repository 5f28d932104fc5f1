import { CUSTOM_METRIC_KINDS, CUSTOM_METRIC_NAME, customMetricKind, FleetwardError, type CustomMetricValue } from '@fleetward/protocol';
import type { CustomValue, MetricKind } from './window-metrics.js';

export { CUSTOM_METRIC_KINDS };

/** A custom device metric a thing type declares: only declared names of the declared kind are kept. */
export interface CustomMetricDeclaration {
  readonly thingType: string;
  readonly name: string;
  readonly kind: MetricKind;
  readonly description: string;
}

/** Why a reported custom value was dropped on ingest (the label of its counter). */
export const CUSTOM_REJECTIONS = ['undeclared', 'wrong-kind'] as const;
export type CustomRejection = (typeof CUSTOM_REJECTIONS)[number];

export function parseCustomDeclaration(input: { readonly thingType: string; readonly name: string; readonly kind: string; readonly description?: string }): CustomMetricDeclaration {
  if (!CUSTOM_METRIC_NAME.test(input.name)) throw new FleetwardError('FW_ERR_VALIDATION', `custom metric name ${JSON.stringify(input.name)} must match ${CUSTOM_METRIC_NAME.source}`);
  if (!(CUSTOM_METRIC_KINDS as readonly string[]).includes(input.kind)) throw new FleetwardError('FW_ERR_VALIDATION', `custom metric kind must be one of ${CUSTOM_METRIC_KINDS.join(', ')}`);
  return { thingType: input.thingType, name: input.name, kind: input.kind as MetricKind, description: (input.description ?? '').slice(0, 256) };
}

/**
 * Keeps the custom values a device reported that its type declares, of the declared kind; the rest
 * are dropped and named in `rejected` (counted, never stored: an undeclared name is how a
 * compromised device would stuff the store, and a list where a number is declared would slip past
 * the behaviours written for it). The values' own shape was checked by the report's parser.
 */
export function validateCustom(
  declared: ReadonlyMap<string, MetricKind> | undefined,
  reported: Readonly<Record<string, CustomMetricValue>>,
): { readonly values: Record<string, CustomValue>; readonly rejected: readonly { readonly name: string; readonly reason: CustomRejection }[] } {
  const values: Record<string, CustomValue> = {};
  const rejected: { name: string; reason: CustomRejection }[] = [];
  for (const [name, value] of Object.entries(reported)) {
    const kind = declared?.get(name);
    if (kind === undefined) rejected.push({ name, reason: 'undeclared' });
    else if (kind !== customMetricKind(value)) rejected.push({ name, reason: 'wrong-kind' });
    else values[name] = itemsOf(value);
  }
  return { values, rejected };
}

/** What detection and the store see: the number, or the list without its tag (the declaration keeps the kind). */
function itemsOf(value: CustomMetricValue): CustomValue {
  if (typeof value === 'number') return value;
  if ('number-list' in value) return value['number-list'];
  return 'string-list' in value ? value['string-list'] : value['address-list'];
}
