import type { AgentConfig } from '../config/agent-config.js';
import { AGENT_VERSION } from '../version.js';
import type { BatterySource } from './battery.js';
import { CpuMeter } from './cpu-meter.js';
import { collectDeviceMetrics, type AgentCounters, type DeviceMetricsSources } from './device-metrics.js';
import { collectInventory } from './inventory.js';

/** What the agent reports about its device on `$fw/things/{thing}/metrics` and `.../inventory`. */
export interface DeviceReports {
  metrics(): Promise<object>;
  inventory(): Promise<object>;
}

/** Reports from the device itself: /proc, the disk of the agent's folder, the battery, the configured firmware image, and the application's custom metrics. */
export function procReports(config: AgentConfig, battery: BatterySource, counters: () => AgentCounters, custom: Pick<DeviceMetricsSources, 'custom' | 'onCustomDropped'> = {}): DeviceReports {
  const cpu = new CpuMeter();
  return {
    metrics: () => collectDeviceMetrics({ counters, battery, cpu, diskPath: config.stateDir, ...custom }),
    inventory: () =>
      collectInventory({
        agentVersion: AGENT_VERSION,
        firmwareVersion: config.firmware.version,
        ...(config.firmware.imagePath !== null && { imagePath: config.firmware.imagePath }),
        ...(config.firmware.sbomRef !== null && { sbomRef: config.firmware.sbomRef }),
      }),
  };
}
