import { compilePolicies, parsePolicyDocument, type CompiledPolicy, type ConnectionFacts, type NamedPolicy } from '../access/policy/index.js';
import type { DeviceIdentity, ThingIdentity } from './device-identity.js';

/** Where the policies that apply to a thing come from (its own, its groups', its certificate's). */
export interface PolicySource {
  policiesFor(identity: ThingIdentity): Promise<readonly NamedPolicy[]>;
}

/**
 * A claim certificate, shared by a batch of devices, allows provisioning from its template and
 * nothing else: publish the request, receive the answer. Not configurable: it is what a claim
 * certificate is.
 */
export const CLAIM_POLICY: NamedPolicy = {
  name: 'fleetward-claim',
  document: parsePolicyDocument({
    version: '2026-11',
    description: 'A claim certificate may only ask to provision a device from its template.',
    statements: [
      { sid: 'connect', effect: 'allow', actions: ['mqtt:connect'], resources: ['client/*'] },
      { sid: 'request', effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/$fw/provisioning/${cert.cn}/request'] },
      { sid: 'answers', effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/$fw/provisioning/${cert.cn}/accepted', 'topic/$fw/provisioning/${cert.cn}/rejected'] },
    ],
  }),
};

/**
 * A quarantined thing keeps only its reserved namespace, whatever its policies say: it can still be
 * told to update or rotate, and report, but reaches no application topic.
 */
export const QUARANTINE_POLICY: NamedPolicy = {
  name: 'fleetward-quarantine',
  document: parsePolicyDocument({
    version: '2026-11',
    description: 'A quarantined thing: its own client id and reserved namespace only.',
    statements: [
      { sid: 'connect-as-self', effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
      { sid: 'reserved-only', effect: 'allow', actions: ['mqtt:publish', 'mqtt:subscribe', 'mqtt:receive'], resources: ['topic/$fw/things/${thing.name}/#'] },
    ],
  }),
};

/** What a connection may do, and the policies it was compiled from (a change to one of them re-evaluates it). */
export interface ConnectionPolicy {
  readonly policy: CompiledPolicy;
  readonly names: readonly string[];
}

/** Compiles what a connection may do, from the registry's facts (never from what the device claims). */
export async function connectionPolicy(source: PolicySource, identity: DeviceIdentity, sourceAddress: string, clientId: string): Promise<ConnectionPolicy> {
  const facts = factsOf(identity, sourceAddress, clientId);
  const policies = identity.kind === 'claim' ? [CLAIM_POLICY] : identity.thingState === 'quarantined' ? [QUARANTINE_POLICY] : await source.policiesFor(identity);
  return { policy: compilePolicies(policies, facts), names: policies.map((p) => p.name) };
}

function factsOf(identity: DeviceIdentity, sourceAddress: string, clientId: string): ConnectionFacts {
  const cert = { cn: identity.certCn, serial: identity.serial, issuer: identity.certIssuer };
  if (identity.kind === 'claim') return { cert, sourceAddress, clientId };
  return { thing: { name: identity.thing, type: identity.thingType, attributes: identity.attributes, groups: identity.groups }, cert, sourceAddress, clientId };
}
