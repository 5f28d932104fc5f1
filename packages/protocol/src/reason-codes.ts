/**
 * MQTT 5.0 reason codes (OASIS MQTT 5.0 §2.4, table 2-6) that Fleetward sends. Named so that
 * error mappings and the gateway read as the spec does.
 */
export const ReasonCode = {
  Success: 0x00,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  PayloadFormatInvalid: 0x99,
  ConnectionRateExceeded: 0x9f,
} as const;

export type ReasonCode = (typeof ReasonCode)[keyof typeof ReasonCode];
