/**
 * Reserved MQTT topics (`$fw/...`): what devices and the gateway exchange besides the
 * applications' own topics. Builders and a parser, so neither side spells a topic by hand.
 */
import { isJobId } from './messages/jobs.js';

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
  /** Commands to the device, and what became of them. */
  commands: (thing: string) => `$fw/things/${thing}/commands`,
  commandResult: (thing: string) => `$fw/things/${thing}/commands/result`,
  /** The backend's current sealing key, for data the device seals before upload: asked on `.../get`, answered to the asking device. */
  sealingKeyRequest: (thing: string) => `$fw/things/${thing}/sealing-key/get`,
  sealingKey: (thing: string) => `$fw/things/${thing}/sealing-key`,
  sealingKeyRejected: (thing: string) => `$fw/things/${thing}/sealing-key/rejected`,
  /** The data contracts for the thing's own topics, for minimizing on the device: asked on `.../get`, answered to the asking device. */
  contractsRequest: (thing: string) => `$fw/things/${thing}/contracts/get`,
  contracts: (thing: string) => `$fw/things/${thing}/contracts`,
  contractsRejected: (thing: string) => `$fw/things/${thing}/contracts/rejected`,
  /** Update jobs (rule 4): pushed on `.../jobs/notify` when one is queued; asked on `.../jobs/get`, answered on `.../jobs`. */
  jobsNotify: (thing: string) => `$fw/things/${thing}/jobs/notify`,
  jobsRequest: (thing: string) => `$fw/things/${thing}/jobs/get`,
  jobs: (thing: string) => `$fw/things/${thing}/jobs`,
  jobsRejected: (thing: string) => `$fw/things/${thing}/jobs/rejected`,
  /** A device reports a step of one job; the gateway answers on `.../accepted` or `.../rejected`. */
  jobUpdate: (thing: string, jobId: string) => `$fw/things/${thing}/jobs/${jobId}/update`,
  jobUpdateAccepted: (thing: string, jobId: string) => `$fw/things/${thing}/jobs/${jobId}/update/accepted`,
  jobUpdateRejected: (thing: string, jobId: string) => `$fw/things/${thing}/jobs/${jobId}/update/rejected`,
} as const;

/** A reserved topic the gateway answers, parsed; null for any other topic. */
export type ReservedRequest =
  | { readonly kind: 'provisioning'; readonly template: string }
  | { readonly kind: 'renewal'; readonly thing: string }
  | { readonly kind: 'sealing-key'; readonly thing: string }
  | { readonly kind: 'contracts'; readonly thing: string }
  | { readonly kind: 'jobs'; readonly thing: string }
  | { readonly kind: 'job-update'; readonly thing: string; readonly jobId: string };

export function parseReservedRequest(topic: string): ReservedRequest | null {
  if (!topic.startsWith(RESERVED_PREFIX)) return null;
  const levels = topic.split('/');
  if (levels.length === 4 && levels[1] === 'provisioning' && levels[3] === 'request' && isName(levels[2])) return { kind: 'provisioning', template: levels[2] as string };
  if (levels.length === 6 && levels[1] === 'things' && levels[3] === 'cert' && levels[4] === 'renew' && levels[5] === 'request' && isName(levels[2])) return { kind: 'renewal', thing: levels[2] as string };
  if (levels.length === 5 && levels[1] === 'things' && levels[3] === 'sealing-key' && levels[4] === 'get' && isName(levels[2])) return { kind: 'sealing-key', thing: levels[2] as string };
  if (levels.length === 5 && levels[1] === 'things' && levels[3] === 'contracts' && levels[4] === 'get' && isName(levels[2])) return { kind: 'contracts', thing: levels[2] as string };
  if (levels.length === 5 && levels[1] === 'things' && levels[3] === 'jobs' && levels[4] === 'get' && isName(levels[2])) return { kind: 'jobs', thing: levels[2] as string };
  if (levels.length === 6 && levels[1] === 'things' && levels[3] === 'jobs' && levels[5] === 'update' && isName(levels[2]) && isJobId(levels[4] as string)) {
    return { kind: 'job-update', thing: levels[2] as string, jobId: levels[4] as string };
  }
  return null;
}

/** A device's own report (`metrics`, `inventory`) on its reserved namespace; null for any other topic. */
export function deviceReportKind(topic: string): 'metrics' | 'inventory' | null {
  // Asked of every publish: application topics are told apart without splitting them.
  if (!topic.startsWith(RESERVED_PREFIX)) return null;
  const levels = topic.split('/');
  if (levels.length !== 4 || levels[0] !== '$fw' || levels[1] !== 'things' || !isName(levels[2])) return null;
  return levels[3] === 'metrics' || levels[3] === 'inventory' ? levels[3] : null;
}

function isName(level: string | undefined): boolean {
  return level !== undefined && /^[A-Za-z0-9:_-]{1,128}$/.test(level);
}
