export { ReasonCode } from './reason-codes.js';
export { errorCodes, FleetwardError, isErrorCode, type ErrorCode, type ErrorSpec } from './errors.js';
