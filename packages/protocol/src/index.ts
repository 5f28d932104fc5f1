export { ReasonCode } from './reason-codes.js';
export { errorCodes, FleetwardError, isErrorCode, type ErrorCode, type ErrorSpec } from './errors.js';
export { deviceReportKind, parseReservedRequest, RESERVED_PREFIX, Topics, type ReservedRequest } from './topics.js';
export {
  clientTokenOf,
  KEY_STORAGES,
  MAX_REQUEST_BYTES,
  parseProvisioningRequest,
  parseRenewalRequest,
  type CertificateAccepted,
  type DeviceKeyStorage,
  type ProvisioningRequest,
  type RenewalRequest,
  type RenewalRequired,
  type RequestRejected,
} from './messages/credentials.js';
export { COMMAND_OUTCOMES, commandIdOf, MAX_COMMAND_BYTES, parseDeviceCommand, type CommandOutcome, type CommandResult, type DeviceCommand } from './messages/commands.js';
export {
  CUSTOM_METRIC_KINDS,
  CUSTOM_METRIC_NAME,
  customMetricKind,
  MAX_CUSTOM_LIST_ITEMS,
  MAX_CUSTOM_METRICS,
  MAX_CUSTOM_STRING_LENGTH,
  MAX_DESTINATIONS,
  MAX_INVENTORY_BYTES,
  MAX_LISTENING_SOCKETS,
  MAX_METRICS_BYTES,
  parseCustomMetrics,
  parseDeviceMetrics,
  parseInventory,
  TRANSPORTS,
  type CustomMetricKind,
  type CustomMetricValue,
  type DeviceMetricsReport,
  type InventoryReport,
  type ListeningSocket,
  type NetworkMetrics,
  type Transport,
} from './messages/device-reports.js';
export { MAX_SEALED_PLAINTEXT_BYTES, openSealed, parseSealedEnvelope, parseSealingKey, SEALED_ALG, SEALED_KEY, sealingPublicKeyOf, sealJson, sealToRecipient, thingSealingInfo, type SealedEnvelope, type SealedValue, type SealingKey, type SealingRecipient } from './sealed-envelope.js';
export { DEVICE_TRANSFORM_KINDS, MAX_DEVICE_CONTRACT_FIELDS, MAX_DEVICE_CONTRACTS, MAX_DEVICE_CONTRACTS_BYTES, parseDeviceContracts, topicFilterMatches, type DeviceContract, type DeviceContractField, type DeviceContracts, type DeviceTransform } from './messages/device-contracts.js';
export { bucketDateTime, bucketEpochSeconds, bucketOf, RFC3339_DATE_TIME, roundTo, truncate } from './generalize.js';
export {
  FINAL_JOB_STATES,
  isJobId,
  JOB_REASONS,
  JOB_STATES,
  JOB_STEPS,
  MAX_JOB_UPDATE_BYTES,
  MAX_JOBS_BYTES,
  MAX_PENDING_JOBS,
  parseJobUpdate,
  parsePendingJobs,
  REPORTED_JOB_STATES,
  type JobReason,
  type JobState,
  type JobStep,
  type JobUpdate,
  type JobUpdateAccepted,
  type PendingJobs,
  type ReportedJobState,
  type UpdateJob,
} from './messages/jobs.js';
