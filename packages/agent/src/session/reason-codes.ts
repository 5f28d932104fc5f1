/**
 * What the agent does with an MQTT 5 refusal. The gateway tells a device why it was refused; a
 * device that retries a forbidden action in a loop is indistinguishable from an attack, and one that
 * ignores a quota makes the quota useless.
 */
export type RefusalResponse =
  /** Keep the message and try again later, more slowly (quota, rate, server busy). */
  | 'slow-down'
  /** Never retry this action: it is forbidden, or the message itself is wrong. */
  | 'give-up';

const SLOW_DOWN = new Set([0x89 /* server busy */, 0x88 /* server unavailable */, 0x96 /* message rate too high */, 0x97 /* quota exceeded */, 0x9f /* connection rate exceeded */]);

export function refusalResponse(reasonCode: number): RefusalResponse {
  return SLOW_DOWN.has(reasonCode) ? 'slow-down' : 'give-up';
}

/** CONNACK codes that say the device itself is not welcome (revoked, banned, not allowed): retry only at the slowest pace. */
const IDENTITY_REFUSED = new Set([0x86 /* bad user name or password */, 0x87 /* not authorized */, 0x8a /* banned */, 0x8c /* bad authentication method */]);

export function isIdentityRefusal(reasonCode: number): boolean {
  return IDENTITY_REFUSED.has(reasonCode);
}
