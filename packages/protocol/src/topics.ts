/**
 * Reserved MQTT topics (`$fw/...`): what devices and the gateway exchange besides the
 * applications' own topics. Builders and a parser, so neither side spells a topic by hand.
 */
export const RESERVED_PREFIX = '$fw/';

export const Topics = {
  provisioningRequest: (template: string) => `$fw/provisioning/${template}/request`,
  provisioningAccepted: (template: string) => `$fw/provisioning/${template}/accepted`,
  provisioningRejected: (template: string) => `$fw/provisioning/${template}/rejected`,
  renewRequest: (thing: string) => `$fw/things/${thing}/cert/renew/request`,
  renewAccepted: (thing: string) => `$fw/things/${thing}/cert/renew/accepted`,
  renewRejected: (thing: string) => `$fw/things/${thing}/cert/renew/rejected`,
  /** The gateway tells a device to renew now (its certificate was marked "must rotate"). */
  renewRequired: (thing: string) => `$fw/things/${thing}/cert/renew/required`,
  inventory: (thing: string) => `$fw/things/${thing}/inventory`,
  metrics: (thing: string) => `$fw/things/${thing}/metrics`,
} as const;

/** A reserved topic the gateway answers, parsed; null for any other topic. */
export type ReservedRequest = { readonly kind: 'provisioning'; readonly template: string } | { readonly kind: 'renewal'; readonly thing: string };

export function parseReservedRequest(topic: string): ReservedRequest | null {
  if (!topic.startsWith(RESERVED_PREFIX)) return null;
  const levels = topic.split('/');
  if (levels.length === 4 && levels[1] === 'provisioning' && levels[3] === 'request' && isName(levels[2])) return { kind: 'provisioning', template: levels[2] as string };
  if (levels.length === 6 && levels[1] === 'things' && levels[3] === 'cert' && levels[4] === 'renew' && levels[5] === 'request' && isName(levels[2])) return { kind: 'renewal', thing: levels[2] as string };
  return null;
}

function isName(level: string | undefined): boolean {
  return level !== undefined && /^[A-Za-z0-9:_-]{1,128}$/.test(level);
}
