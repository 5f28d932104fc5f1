import { parsePolicyDocument } from './parse-policy.js';
import type { PolicyDocument } from './types.js';

/** The name under which the default device policy is created. */
export const DEFAULT_DEVICE_POLICY_NAME = 'fleetward-default-device';

/**
 * The default device policy (ARCHITECTURE.md "The path of a device"): a device connects only with its
 * own thing name as client id, and publishes, subscribes and receives only in its own namespaces,
 * `things/{thing}/...` for applications and `$fw/things/{thing}/...` for Fleetward's reserved topics
 * (certificate rotation, jobs, inventory, metrics). Retained publishing is not granted.
 */
export const DEFAULT_DEVICE_POLICY: PolicyDocument = parsePolicyDocument({
  version: '2026-11',
  description: 'Default device policy: connect as its own thing name; publish, subscribe and receive only in its own namespaces.',
  statements: [
    { sid: 'connect-as-self', effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
    {
      sid: 'own-namespaces',
      effect: 'allow',
      actions: ['mqtt:publish', 'mqtt:subscribe', 'mqtt:receive'],
      resources: ['topic/things/${thing.name}/#', 'topic/$fw/things/${thing.name}/#'],
    },
  ],
});
