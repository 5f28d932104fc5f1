import { ReasonCode } from '@fleetward/protocol';

/** 3.1.1 CONNACK return codes (3.1.1 table 3.1), which the spec lets a server use alone (MQTT-3.2.2-6). */
export const ReturnCode = {
  Accepted: 0x00,
  UnacceptableProtocolVersion: 0x01,
  IdentifierRejected: 0x02,
  ServerUnavailable: 0x03,
  BadUserNameOrPassword: 0x04,
  NotAuthorized: 0x05,
} as const;

/** The 3.1.1 return code nearest to an MQTT 5 CONNACK reason code. */
export function toConnackReturnCode(reasonCode: number): number {
  switch (reasonCode) {
    case ReasonCode.Success:
      return ReturnCode.Accepted;
    case ReasonCode.UnsupportedProtocolVersion:
      return ReturnCode.UnacceptableProtocolVersion;
    case ReasonCode.ClientIdentifierNotValid:
      return ReturnCode.IdentifierRejected;
    case ReasonCode.BadUserNameOrPassword:
      return ReturnCode.BadUserNameOrPassword;
    case ReasonCode.NotAuthorized:
    case ReasonCode.Banned:
    case ReasonCode.BadAuthenticationMethod:
      return ReturnCode.NotAuthorized;
    default:
      return ReturnCode.ServerUnavailable;
  }
}
