import { isIP } from 'node:net';
import { FleetwardError } from '@fleetward/protocol';
import type { CustomValue, MetricKind } from './window-metrics.js';

/** A custom device metric a thing type declares: only declared names of the declared kind are kept. */
export interface CustomMetricDeclaration {
  readonly thingType: string;
  readonly name: string;
  readonly kind: MetricKind;
  readonly description: string;
}

export const CUSTOM_METRIC_KINDS: readonly MetricKind[] = ['number', 'number-list', 'string-list', 'address-list'];
export const CUSTOM_METRIC_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;
/** Items kept of a list value; a longer list is refused, not cut (the device contradicts its declaration). */
export const MAX_CUSTOM_LIST_ITEMS = 256;
const MAX_CUSTOM_STRING = 128;

export function parseCustomDeclaration(input: { readonly thingType: string; readonly name: string; readonly kind: string; readonly description?: string }): CustomMetricDeclaration {
  if (!CUSTOM_METRIC_NAME.test(input.name)) throw new FleetwardError('FW_ERR_VALIDATION', `custom metric name ${JSON.stringify(input.name)} must match ${CUSTOM_METRIC_NAME.source}`);
  if (!(CUSTOM_METRIC_KINDS as readonly string[]).includes(input.kind)) throw new FleetwardError('FW_ERR_VALIDATION', `custom metric kind must be one of ${CUSTOM_METRIC_KINDS.join(', ')}`);
  return { thingType: input.thingType, name: input.name, kind: input.kind as MetricKind, description: (input.description ?? '').slice(0, 256) };
}

/**
 * Keeps the custom values a device reported that its type declares, of the declared kind; the rest
 * are dropped and named in `rejected` (counted, never stored: an undeclared name is how a
 * compromised device would stuff the store).
 */
export function validateCustom(declared: ReadonlyMap<string, MetricKind> | undefined, reported: Readonly<Record<string, unknown>>): { readonly values: Record<string, CustomValue>; readonly rejected: readonly string[] } {
  const values: Record<string, CustomValue> = {};
  const rejected: string[] = [];
  for (const [name, value] of Object.entries(reported)) {
    const kind = declared?.get(name);
    const checked = kind === undefined ? undefined : valueOfKind(kind, value);
    if (checked === undefined) rejected.push(name);
    else values[name] = checked;
  }
  return { values, rejected };
}

function valueOfKind(kind: MetricKind, value: unknown): CustomValue | undefined {
  if (kind === 'number') return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  if (!Array.isArray(value) || value.length > MAX_CUSTOM_LIST_ITEMS) return undefined;
  const items: unknown[] = value;
  switch (kind) {
    case 'number-list':
      return items.every((v) => typeof v === 'number' && Number.isFinite(v)) ? (items as number[]) : undefined;
    case 'string-list':
      return items.every((v) => typeof v === 'string' && v.length <= MAX_CUSTOM_STRING) ? (items as string[]) : undefined;
    case 'address-list':
      return items.every((v) => typeof v === 'string' && isIP(v) !== 0) ? (items as string[]) : undefined;
    default: {
      const never: never = kind;
      return never;
    }
  }
}
