/** Readings of the device's resources, from pluggable sources (a battery gauge, the kernel's memory figures). */
export interface ResourceReadings {
  /** Percent, or null on mains power. */
  readonly batteryPercent: number | null;
  /** Share of memory still available, 0–1. */
  readonly memoryAvailable: number;
}

export interface ResourceThresholds {
  readonly lowBatteryPercent: number;
  readonly memoryPressureBelow: number;
}

/**
 * How the agent degrades. Only the optional work yields: on low battery telemetry is thinned and
 * updates wait; under memory pressure the offline queue is shed. Certificate checks, TLS, command
 * validation and local schema checks are never part of what yields.
 */
export interface ResourceMode {
  readonly lowBattery: boolean;
  readonly memoryPressure: boolean;
}

export function resourceMode(readings: ResourceReadings, thresholds: ResourceThresholds): ResourceMode {
  return {
    lowBattery: readings.batteryPercent !== null && readings.batteryPercent <= thresholds.lowBatteryPercent,
    memoryPressure: readings.memoryAvailable < thresholds.memoryPressureBelow,
  };
}

/** On low battery one reading in this many is sent per stream. */
export const LOW_BATTERY_TELEMETRY_DIVISOR = 4;
