import { ReasonCode } from './reason-codes.js';

/**
 * The one registry of Fleetward's stable error codes. Each code is mapped once to an HTTP status
 * (problem+json), an MQTT 5 reason code and a CLI exit code (1: refused or failed operation,
 * 2: bad usage or bad input). Tests assert codes, never message text; docs/errors.md is generated
 * from this table.
 */
export interface ErrorSpec {
  readonly title: string;
  readonly http: number;
  readonly mqtt: ReasonCode;
  readonly exit: 1 | 2;
}

export const errorCodes = {
  FW_ERR_BAD_REQUEST: { title: 'Malformed request', http: 400, mqtt: ReasonCode.MalformedPacket, exit: 2 },
  FW_ERR_VALIDATION: { title: 'Input failed validation', http: 400, mqtt: ReasonCode.PayloadFormatInvalid, exit: 2 },
  FW_ERR_UNSUPPORTED_MEDIA_TYPE: { title: 'Unsupported media type', http: 415, mqtt: ReasonCode.PayloadFormatInvalid, exit: 2 },
  FW_ERR_PAYLOAD_TOO_LARGE: { title: 'Payload too large', http: 413, mqtt: ReasonCode.PacketTooLarge, exit: 2 },
  FW_ERR_USAGE: { title: 'Bad command usage', http: 400, mqtt: ReasonCode.ProtocolError, exit: 2 },
  FW_ERR_CSR_MALFORMED: { title: 'Certificate request cannot be parsed', http: 400, mqtt: ReasonCode.PayloadFormatInvalid, exit: 2 },
  FW_ERR_CSR_SIGNATURE: { title: 'Certificate request signature does not verify', http: 400, mqtt: ReasonCode.PayloadFormatInvalid, exit: 2 },
  FW_ERR_KEY_REJECTED: { title: 'Key is weak or of an unsupported type', http: 400, mqtt: ReasonCode.PayloadFormatInvalid, exit: 2 },
  FW_ERR_NAME_MISMATCH: { title: 'Certificate request names another subject than allowed', http: 400, mqtt: ReasonCode.NotAuthorized, exit: 2 },
  FW_ERR_NOT_FOUND: { title: 'Not found', http: 404, mqtt: ReasonCode.UnspecifiedError, exit: 1 },
  FW_ERR_KEY_REUSED: { title: 'Key already belongs to another thing', http: 409, mqtt: ReasonCode.NotAuthorized, exit: 1 },
  FW_ERR_INVALID_TRANSITION: { title: 'Lifecycle transition not allowed', http: 409, mqtt: ReasonCode.UnspecifiedError, exit: 1 },
  FW_ERR_THING_STATE: { title: 'The thing\'s state does not allow this', http: 409, mqtt: ReasonCode.NotAuthorized, exit: 1 },
  FW_ERR_CERT_REVOKED: { title: 'Certificate revoked', http: 403, mqtt: ReasonCode.NotAuthorized, exit: 1 },
  FW_ERR_ENROLLMENT_DENIED: { title: 'Enrollment credential refused (unknown, expired, used up, revoked, or for another template)', http: 403, mqtt: ReasonCode.NotAuthorized, exit: 1 },
  FW_ERR_CONFLICT: { title: 'Conflict with the current state', http: 409, mqtt: ReasonCode.UnspecifiedError, exit: 1 },
  FW_ERR_UNAUTHENTICATED: { title: 'Authentication required', http: 401, mqtt: ReasonCode.BadUserNameOrPassword, exit: 1 },
  FW_ERR_TOKEN_INVALID: { title: 'Unknown or malformed token', http: 401, mqtt: ReasonCode.BadUserNameOrPassword, exit: 1 },
  FW_ERR_TOKEN_EXPIRED: { title: 'Token expired', http: 401, mqtt: ReasonCode.BadUserNameOrPassword, exit: 1 },
  FW_ERR_TOKEN_REVOKED: { title: 'Token revoked', http: 401, mqtt: ReasonCode.BadUserNameOrPassword, exit: 1 },
  FW_ERR_FORBIDDEN: { title: 'Not permitted for this role or token scope', http: 403, mqtt: ReasonCode.NotAuthorized, exit: 1 },
  FW_ERR_AUTH_THROTTLED: { title: 'Too many failed authentications from this address', http: 429, mqtt: ReasonCode.ConnectionRateExceeded, exit: 1 },
  FW_ERR_CONFIG_INVALID: { title: 'Invalid configuration', http: 500, mqtt: ReasonCode.ImplementationSpecificError, exit: 2 },
  FW_ERR_HOME_INSECURE: { title: 'Data folder or secret file is accessible to others', http: 500, mqtt: ReasonCode.ImplementationSpecificError, exit: 2 },
  FW_ERR_HOME_NOT_INITIALIZED: { title: 'Data folder is not initialized', http: 500, mqtt: ReasonCode.ImplementationSpecificError, exit: 1 },
  FW_ERR_KEY_UNREADABLE: { title: 'Sealed key or key-encryption key cannot be read', http: 500, mqtt: ReasonCode.ImplementationSpecificError, exit: 1 },
  FW_ERR_QUEUE_UNAVAILABLE: { title: 'Device queue cannot be written (disk full or I/O error)', http: 507, mqtt: ReasonCode.QuotaExceeded, exit: 1 },
  FW_ERR_STORE_UNAVAILABLE: { title: 'Database unreachable', http: 503, mqtt: ReasonCode.ServerUnavailable, exit: 1 },
  FW_ERR_STORE_SCHEMA: { title: 'Database schema is newer than this version of Fleetward', http: 500, mqtt: ReasonCode.ServerUnavailable, exit: 1 },
  FW_ERR_CA_UNAVAILABLE: { title: 'Certificate authority not loaded', http: 503, mqtt: ReasonCode.ServerUnavailable, exit: 1 },
  FW_ERR_NOT_READY: { title: 'Node not ready', http: 503, mqtt: ReasonCode.ServerUnavailable, exit: 1 },
  FW_ERR_PORT_IN_USE: { title: 'Listening port already in use', http: 500, mqtt: ReasonCode.ServerUnavailable, exit: 1 },
  FW_ERR_AUDIT_CHAIN_BROKEN: { title: 'Audit trail failed verification', http: 409, mqtt: ReasonCode.UnspecifiedError, exit: 1 },
  FW_ERR_REMOTE: { title: 'The node answered with an unexpected response', http: 502, mqtt: ReasonCode.UnspecifiedError, exit: 1 },
  FW_ERR_POLICY_UNTRANSLATABLE: { title: 'The AWS IoT policy has no exact Fleetward translation', http: 422, mqtt: ReasonCode.ImplementationSpecificError, exit: 2 },
  FW_ERR_INTERNAL: { title: 'Internal error', http: 500, mqtt: ReasonCode.UnspecifiedError, exit: 1 },
  FW_ERR_DATA_CONTRACT_INVALID: { title: 'Data contract is invalid (schema, classification, purposes, retention or transform)', http: 400, mqtt: ReasonCode.PayloadFormatInvalid, exit: 2 },
  FW_ERR_PAYLOAD_REJECTED: { title: 'Payload refused by its data contract (not JSON, too large or deep, schema violation, unknown field)', http: 400, mqtt: ReasonCode.PayloadFormatInvalid, exit: 2 },
  FW_ERR_DATA_NO_CONTRACT: { title: 'No data contract covers this topic, and unmatched topics are refused', http: 403, mqtt: ReasonCode.NotAuthorized, exit: 1 },
  FW_ERR_DATA_BACKLOG: { title: 'The telemetry store is behind; data refused until it catches up', http: 503, mqtt: ReasonCode.QuotaExceeded, exit: 1 },
  FW_ERR_PURPOSE_REQUIRED: { title: 'Reading data requires a declared purpose', http: 400, mqtt: ReasonCode.NotAuthorized, exit: 2 },
  FW_ERR_SIGNATURE_INVALID: { title: 'Signed metadata or artifact does not verify (unsigned, unknown key, below threshold, or changed after signing)', http: 400, mqtt: ReasonCode.PayloadFormatInvalid, exit: 2 },
  FW_ERR_ROLLBACK_REFUSED: { title: 'Older version or lower security version than already trusted or installed', http: 409, mqtt: ReasonCode.NotAuthorized, exit: 1 },
  FW_ERR_INCOMPATIBLE_HARDWARE: { title: 'Artifact is not built for this thing type', http: 409, mqtt: ReasonCode.NotAuthorized, exit: 1 },
  FW_ERR_UPDATES_NOT_SET_UP: { title: 'The update repository has no root metadata yet (run fleetward firmware root propose, sign, import)', http: 409, mqtt: ReasonCode.ServerUnavailable, exit: 1 },
  FW_ERR_SEALED_INVALID: { title: 'Sealed value cannot be opened (malformed, modified, sealed to an unknown key or for another device)', http: 400, mqtt: ReasonCode.PayloadFormatInvalid, exit: 2 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCodes;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCodes, value);
}

export class FleetwardError extends Error {
  override readonly name = 'FleetwardError';
  readonly code: ErrorCode;
  /** Machine-readable facts about the failure, safe to show to the caller (never secrets). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Readonly<Record<string, unknown>> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  get spec(): ErrorSpec {
    return errorCodes[this.code];
  }
}
