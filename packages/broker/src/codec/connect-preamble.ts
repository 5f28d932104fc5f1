/**
 * What the first bytes of a CONNECT say before it is decoded: whether it speaks MQTT at all, and
 * at which protocol level. mqtt-packet refuses unknown levels as a parse error, but MQTT-3.1.2-2
 * wants a CONNACK 0x01 for them, so the level is read here first.
 */
export type ConnectPreamble =
  | { readonly kind: 'mqtt'; readonly level: number; readonly flags: number | undefined }
  | { readonly kind: 'not-mqtt' }
  | { readonly kind: 'incomplete' };

const NAMES = ['MQTT', 'MQIsdp'] as const;

/** `packet` starts at the CONNECT's first byte; it may be only the start of the packet. */
export function readConnectPreamble(packet: Buffer): ConnectPreamble {
  let offset = 1;
  while (offset < packet.length && ((packet[offset] as number) & 0x80) !== 0) offset++;
  offset++;
  if (offset + 2 > packet.length) return { kind: 'incomplete' };
  const nameLength = packet.readUInt16BE(offset);
  offset += 2;
  if (offset + nameLength + 1 > packet.length) return nameLength > 6 ? { kind: 'not-mqtt' } : { kind: 'incomplete' };
  const name = packet.toString('latin1', offset, offset + nameLength);
  if (!(NAMES as readonly string[]).includes(name)) return { kind: 'not-mqtt' };
  return { kind: 'mqtt', level: packet[offset + nameLength] as number, flags: packet[offset + nameLength + 1] };
}

/** 3.1.1 MQTT-3.1.2-22: a Password Flag without a User Name Flag (which MQTT 5 allows). mqtt-packet does not check it. */
export function hasPasswordWithoutUserName(level: number, flags: number | undefined): boolean {
  return level === 4 && flags !== undefined && (flags & 0xc0) === 0x40;
}

/** Protocol levels this engine speaks: 4 is MQTT 3.1.1, 5 is MQTT 5.0. */
export type ProtocolVersion = 4 | 5;

export function isSupportedLevel(level: number): level is ProtocolVersion {
  return level === 4 || level === 5;
}
