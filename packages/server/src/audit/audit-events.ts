import type { JsonValue } from '../json.js';

/**
 * Every kind of event the audit trail holds, with what it means. Modules add their actions here,
 * so the list (and docs/audit-events.md, generated from it) stays complete.
 */
export const auditActions = {
  'node.init': 'A data folder was initialized: key ring, database, CA hierarchy.',
  'node.start': 'A node started serving.',
  'node.stop': 'A node stopped after draining.',
  'ca.create': 'A certificate authority (root or issuing) was created.',
  'tls.server-certificate.issue': 'A TLS server certificate was issued for the node.',
  'kek.rotate': 'The key-encryption key was rotated and every sealed key re-sealed.',
  'operator.create': 'An operator account was created (with its first API token).',
  'operator.revoke': 'An operator account and all its tokens were revoked.',
  'token.create': 'An API token was issued to an operator.',
  'token.revoke': 'An API token was revoked.',
  'auth.failure': 'An API request presented a missing, malformed, unknown, expired or revoked token.',
  'auth.throttled': 'A source address was blocked after too many failed authentications.',
  'access.denied': 'An authenticated operator was refused an action their role or token scope does not allow.',
  'audit.verify': 'The audit trail was verified.',
  'thing.create': 'A thing was registered (by an operator, manufacturing, claim or just-in-time registration).',
  'thing.update': 'A thing\'s type or attributes changed.',
  'thing.state': 'A thing moved through its lifecycle (or a transition was refused: outcome denied).',
  'thing-type.create': 'A thing type was created.',
  'thing-type.update': 'A thing type changed (description, hardware-key requirement).',
  'thing-type.delete': 'A thing type was deleted.',
  'group.create': 'A thing group was created.',
  'group.delete': 'A thing group was deleted; its things left it.',
  'group.add-thing': 'A thing was added to a group.',
  'group.remove-thing': 'A thing was removed from a group.',
  'certificate.issue': 'A certificate was issued from a CSR (or a request was refused: outcome denied, with the error code).',
  'certificate.revoke': 'Certificates were revoked, with the reason; revocation is final.',
  'certificate.rotate-requested': 'An operator asked a device to rotate its certificate (must rotate).',
  'template.create': 'A provisioning template was created.',
  'template.update': 'A provisioning template was enabled or disabled.',
  'enrollment-token.create': 'A one-time enrollment token was issued for a template.',
  'enrollment-token.revoke': 'An enrollment token was revoked.',
  'provisioning.claim': 'A device claimed an identity with a claim credential (or was refused: outcome denied, with the reason).',
  'ca.rotate': 'A new issuing CA replaced the active one; the previous one keeps signing CRLs and OCSP answers for its certificates.',
  'ca.issuing-request': 'A key for a new issuing CA was made in custody and a CSR written for the offline root to sign.',
  'credentials.audit': 'The whole fleet\'s credentials were audited (on schedule or on demand); details count the findings by severity.',
  'ca.register': 'A third-party CA was registered with proof of possession of its key (or refused: outcome denied).',
  'ca.deregister': 'A registered third-party CA was retired: devices with its certificates are refused.',
  'mqtt.connect': 'A device connected to the gateway, or was refused (outcome denied, with the reason): unknown or revoked certificate, thing state, client id.',
  'mqtt.takeover': 'A device connected with a client id already connected: the older connection was closed (MQTT 5: 0x8E).',
  'mqtt.disconnect': 'The gateway closed live connections because a certificate was revoked, a thing changed state, a CA was deregistered, or a dependency (database, Redis) stayed unreachable longer than live sessions may keep their last policy.',
  'device.ban': 'An operator banned a thing, client id or source address from the gateway (every node enforces it); details give the expiry and note.',
  'device.unban': 'An operator lifted a ban.',
  'mqtt.throttled': 'Device limits refused handshakes, connects or publishes: one summary per device or source address per interval (counts by reason), so a flood cannot flood the trail.',
  'provisioning.jitr': 'A device whose certificate chains to a registered CA was registered just in time on first contact (or refused).',
  'data.contract.apply': 'Data contracts were applied (new versions of named contracts); details list names and versions.',
  'data.read': 'An operator read personal or sensitive telemetry for a declared purpose (details name the thing, purpose, fields and row count), or a data webhook was sent a batch holding such fields (actor `data-webhook:<name>`; details give the delivery id, things, fields and message count; retries of the batch are not audited again).',
  'data.detokenize': 'A token was exchanged for its original value from the token vault (or refused: outcome denied).',
  'data.purge': "One thing's stored data was erased on request (right to erasure); details count the rows and vault entries removed.",
  'data.retention': 'The retention job deleted stored data past its retention period; details count rows by contract and class.',
  'data.sealing-key.rotate': 'A new backend sealing key was made active (devices seal local data to it); older keys keep opening what was sealed to them.',
  'data.webhook.create': 'A data webhook consumer was registered: URL, selector, purpose and role (at most its creator\'s clearance); its HMAC secret generated and sealed at rest.',
  'data.webhook.delete': 'A data webhook consumer and its cursor were removed.',
  'data.webhook.pause': 'Deliveries to a data webhook consumer were paused (its cursor is kept).',
  'data.webhook.resume': 'Deliveries to a paused data webhook consumer resumed from its cursor.',
  'data.webhook.rotate-secret': 'A data webhook consumer was given a new HMAC secret (shown once); later deliveries, retries included, are signed with it.',
  'policy.create': 'A device policy was created (version 1), from a document or imported from an AWS IoT policy.',
  'policy.update': 'A device policy got a new version, or its default version (the one in force) was changed.',
  'policy.delete': 'A device policy and all its versions were deleted (with --force, after detaching it everywhere).',
  'policy.attach': 'A device policy was attached to a thing, a group (and the groups below it) or a certificate.',
  'policy.detach': 'A device policy was detached from a thing, a group or a certificate.',
  'firmware.add': 'A firmware artifact was uploaded (bytes stored content-addressed); details give its SHA-256, size, security version and compatible thing types.',
  'firmware.root.import': 'Signed TUF root metadata (offline root keys) was accepted: the first root, or a rotation of root or targets keys approved by the old root keys.',
  'firmware.targets.import': 'Signed TUF targets metadata (offline targets keys) was published: the listed artifacts may now be deployed.',
  'firmware.metadata.refused': 'Uploaded TUF metadata was refused (unsigned, below threshold, unknown key, rollback, or not matching the artifacts); details give the reason.',
  'firmware.download.refused': "A device's download of update metadata or an artifact was refused (unknown or revoked certificate, thing state, another hardware type).",
  'firmware.unauthorized': 'A device reported running an image that is not a signed target of its thing type (unauthorized firmware); details say whether it was quarantined.',
  'deployment.create': 'An update deployment was created (by an operator, or automatically for a security release).',
  'deployment.cancel': 'An operator cancelled a deployment: jobs not yet finished are cancelled.',
  'deployment.abort': 'A deployment stopped itself: its failure rate passed the threshold, or updated devices regressed.',
  'deployment.pause': 'A deployment paused itself (updated devices regressed against the others) or was paused by an operator.',
  'deployment.resume': 'An operator resumed a paused deployment.',
  'deployment.complete': 'Every job of a deployment reached a final state.',
  'deployment.job.finish': "A device reported its update job finished: succeeded, failed (it could not apply it) or rejected (it refused the update: signature, rollback, incompatible hardware); details give the reason.",
  'deployment.job.timeout': 'A device did not finish its update job in time (stalled): the job is timed out.',
  'group.auto-security-updates': 'A group was opted in to or out of automatic security updates.',
  'updates.alert': 'An update alert for operators (deployment aborted or paused, stalled device, security update that cannot reach a device, unauthorized firmware).',
  'monitor.profile.create': 'Rule 5: an operator created or replaced a security profile (behaviours detection holds devices to); details give its behaviours.',
  'monitor.profile.delete': 'An operator deleted a security profile (and its attachments).',
  'monitor.profile.attach': 'An operator attached a security profile to a group: its behaviours apply to the group\'s things and its subgroups\'.',
  'monitor.profile.detach': 'An operator detached a security profile from a group.',
  'monitor.custom-metric.declare': 'An operator declared a custom device metric for a thing type (only declared metrics are kept).',
  'monitor.custom-metric.remove': 'An operator removed a custom device metric declaration.',
  'health.control.failed': 'A canary found a security control not holding (rule 6): an attack on the node\'s own listeners that must be refused was not, or the check could not run; details name the control and what was seen.',
  'health.control.recovered': 'A security control that a canary had found failing holds again.',
  'health.dependency.unavailable': 'Rule 6, fail closed: the node lost the database or Redis; new device connections are refused and live sessions are closed once the outage outlasts FLEETWARD_HEALTH_FAIL_CLOSED_GRACE_SECONDS (with the database away this event cannot be recorded; the log keeps it).',
  'health.dependency.recovered': 'The database or Redis is reachable again and devices are admitted again; details give the outage\'s start, end, length, and how many live sessions were closed for outlasting the bound.',
  'alert.open': 'Rule 5: a detection opened an alert (later detections with its dedupe key only bump its count).',
  'alert.acknowledge': 'An operator acknowledged an alert: someone is on it.',
  'alert.resolve': 'An operator resolved an alert; a later detection with its key opens a new one.',
  'alert.note': 'An operator added a note to an alert\'s incident timeline.',
  'alert.verdict': 'An operator set an alert\'s verdict: true-positive, benign or false-positive.',
  'alert.suppress': 'An operator suppressed alerts for a behaviour, a thing or a group until an expiry (detections are counted, not alerted).',
  'alert.unsuppress': 'An operator lifted a suppression before its expiry.',
  'response.action': 'A response action ran against a thing (quarantine, revoke-certificate, suspend, force-rotation, start-update, notify), automatically or by an operator; outcome failure records why it failed; details say if it waits for approval.',
  'response.approve': 'An operator approved a response action that waited for approval (it then ran), or rejected it (outcome denied).',
  'response.release': 'A thing was released from quarantine (or suspension by a response), by an operator or because the quarantine expired.',
  'notify.webhook.add': 'An operator added a notification webhook (its HMAC secret sealed at rest).',
  'notify.webhook.remove': 'An operator removed a notification webhook.',
  'notify.delivery.failed': 'A webhook notification was given up after its last retry; details give the webhook, alert and last error.',
} as const;

export type AuditAction = keyof typeof auditActions;

export type AuditOutcome = 'success' | 'denied' | 'failure';

/** Who performs an action: `operator:<name>`, `local:<os user>` (CLI on the data folder), `node`, `thing:<name>`. */
export interface Actor {
  readonly name: string;
  /** Network source address, when the action came over the network. */
  readonly source?: string;
}

/** The audit fields naming an actor. */
export function actorFields(actor: Actor): { actor: string; source?: string } {
  return actor.source === undefined ? { actor: actor.name } : { actor: actor.name, source: actor.source };
}

/** What a caller records; the log adds sequence number, time and hashes. */
export interface AuditEvent {
  /** Who: `operator:<name>`, `local:<os user>`, `node`, `anonymous`. */
  readonly actor: string;
  readonly action: AuditAction;
  readonly outcome: AuditOutcome;
  readonly target?: string;
  /** Network source address, when the event came over the network. */
  readonly source?: string;
  readonly details?: Readonly<Record<string, JsonValue>>;
}

/** A stored event, as hashed into the chain. */
export interface AuditRecord {
  readonly seq: number;
  readonly ts: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly outcome: string;
  readonly source: string | null;
  /** Canonical JSON of the details. */
  readonly details: string;
  readonly prevHash: string;
  readonly hash: string;
}
