export { ReasonCode } from './reason-codes.js';
export { errorCodes, FleetwardError, isErrorCode, type ErrorCode, type ErrorSpec } from './errors.js';
export { parseReservedRequest, RESERVED_PREFIX, Topics, type ReservedRequest } from './topics.js';
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
