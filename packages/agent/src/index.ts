export { FleetwardAgent, type AgentEvent, type AgentOptions, type AgentStatus } from './agent.js';
export { loadAgentConfig, parseAgentConfig, type AgentConfig, type MaintenanceWindow, type ProvisioningConfig, type UpdatesConfig } from './config/agent-config.js';
export { isUpdateFault, UPDATE_FAULTS, type UpdateFault } from './faults/update-faults.js';
export type { CommandHandler } from './commands/command-dispatcher.js';
export { powerSupplyBattery, scriptedBattery, type BatterySource } from './metrics/battery.js';
export { CpuMeter } from './metrics/cpu-meter.js';
export { collectDeviceMetrics, type AgentCounters, type DeviceMetricsSources } from './metrics/device-metrics.js';
export type { CustomMetrics, DroppedCustomMetric } from './metrics/custom-metrics.js';
export { collectInventory, sha256File, type InventoryOptions } from './metrics/inventory.js';
export type { DeviceReports } from './metrics/proc-reports.js';
export {
  DEFAULT_QUEUE_LIMITS,
  nodeQueueFileSystem,
  OfflineQueue,
  type AppendResult,
  type NewQueuedMessage,
  type OfflineQueueLimits,
  type OfflineQueueOptions,
  type QueuedMessage,
  type QueuedProperties,
  type QueueFile,
  type QueueFileSystem,
  type QueuePathInfo,
  type QueueRecovery,
} from './queue/offline-queue.js';
export { DEFAULT_MAX_SEALED_RECORDS, SealedStore, type SealedStoreOptions } from './sealed/sealed-store.js';
export { REBOOT_EXIT_CODE } from './updates/reboot-exit-code.js';
export { UpdateClient, type RunningFirmwareReport, type UpdateClientDeps, type UpdateEvent, type UpdateStatus } from './updates/update-client.js';
export { inMaintenanceWindow, nextWindowOpening } from './updates/maintenance-window.js';
export { MtlsFetcher, type MtlsFetcherOptions } from './updates/mtls-fetcher.js';
export { decideInstall, signedRelease, type PolicyDecision, type SignedRelease } from './updates/update-policy.js';
export type { PendingInstall, Slot, SlotFirmware, SlotState } from './updates/slot-state.js';
export { AGENT_VERSION } from './version.js';
