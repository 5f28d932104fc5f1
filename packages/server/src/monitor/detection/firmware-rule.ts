import type { Clock } from '../../clock.js';
import type { RaiseAlert } from '../../updates/types.js';
import type { DetectionSink } from '../types.js';
import { BUILTIN_RULES, type BuiltinSettings } from './builtin-rules.js';

/**
 * The "device reporting unknown firmware" rule. The software inventory (rule 4) already decides
 * it when a device reports an image that is not a signed target of its type, and raises an
 * `unauthorized-firmware` update alert (once per image). This wraps that RaiseAlert: the update
 * alert goes on as before, and the same event becomes a Detection for the alert service.
 */
export function withFirmwareDetections(raise: RaiseAlert, sink: DetectionSink, clock: Clock, settings: BuiltinSettings = BUILTIN_RULES['unknown-firmware']): RaiseAlert {
  return async (alert) => {
    await raise(alert);
    if (alert.kind !== 'unauthorized-firmware' || alert.thing === undefined || !settings.enabled) return;
    const imageHash = typeof alert.details?.imageHash === 'string' ? alert.details.imageHash : null;
    await sink.detected({
      thing: alert.thing,
      behavior: 'unknown-firmware',
      profile: null,
      severity: settings.severity,
      metric: 'inventory.imageHash',
      value: imageHash,
      message: alert.message,
      at: clock.now().toISOString(),
      dedupeKey: `${alert.thing}/unknown-firmware/${imageHash ?? 'none'}`,
      actions: settings.actions,
    });
  };
}
