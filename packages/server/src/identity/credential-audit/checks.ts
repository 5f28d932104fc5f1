import type { ThingState } from '../registry/lifecycle.js';

/** What the credential audit looks for (docs/rule-01-identities.md describes each). */
export const FINDING_KINDS = [
  'certificate-expiring',
  'ca-expiring',
  'certificate-never-used',
  'inactive-thing-certificate',
  'weak-key',
  'shared-certificate',
  'shared-key',
  'multiple-active-certificates',
  'hardware-key-required',
] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

export const FINDING_SEVERITIES = ['high', 'medium', 'low'] as const;
export type FindingSeverity = (typeof FINDING_SEVERITIES)[number];

export interface Finding {
  readonly kind: FindingKind;
  readonly severity: FindingSeverity;
  readonly thing: string | null;
  readonly serial: string | null;
  readonly caId: string | null;
  readonly message: string;
}

/** An active device certificate, with what the checks need to know about it and its thing. */
export interface CertificateFacts {
  readonly serial: string;
  readonly thing: string | null;
  readonly thingState: ThingState | null;
  readonly requireHardwareKey: boolean;
  readonly keyFingerprint: string;
  readonly keyStorage: string;
  readonly notAfter: string;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  /** Why the key or signature is weak, for certificates Fleetward did not issue itself; null if sound. */
  readonly weakness: string | null;
  /** Distinct MQTT client ids it connected as, recently. */
  readonly clientIds: readonly string[];
}

export interface CaFacts {
  readonly id: string;
  readonly role: 'root' | 'issuing' | 'external';
  readonly subject: string;
  readonly notAfter: string;
}

export interface AuditSettings {
  readonly now: Date;
  readonly expiryWarningDays: number;
  readonly caExpiryWarningDays: number;
  readonly unusedCertificateDays: number;
  readonly renewalWindowDays: number;
}

const DAY_MS = 86_400_000;

/** Every finding for these certificates and CAs. Pure: the caller gathers the facts. */
export function assessCredentials(certificates: readonly CertificateFacts[], cas: readonly CaFacts[], settings: AuditSettings): Finding[] {
  const findings = [...cas.flatMap((ca) => caFindings(ca, settings)), ...certificates.flatMap((c) => certificateFindings(c, settings))];
  findings.push(...sharedKeys(certificates), ...multipleActive(certificates, settings));
  return findings;
}

function caFindings(ca: CaFacts, { now, caExpiryWarningDays }: AuditSettings): Finding[] {
  const left = Date.parse(ca.notAfter) - now.getTime();
  if (left > caExpiryWarningDays * DAY_MS) return [];
  const message = left <= 0 ? `${ca.role} CA ${ca.subject} expired on ${ca.notAfter}` : `${ca.role} CA ${ca.subject} expires on ${ca.notAfter}, in ${Math.ceil(left / DAY_MS)} day(s)`;
  return [{ kind: 'ca-expiring', severity: ca.role === 'external' ? 'medium' : 'high', thing: null, serial: null, caId: ca.id, message }];
}

function certificateFindings(c: CertificateFacts, settings: AuditSettings): Finding[] {
  const found: Finding[] = [];
  const add = (kind: FindingKind, severity: FindingSeverity, message: string) => found.push({ kind, severity, thing: c.thing, serial: c.serial, caId: null, message });
  const now = settings.now.getTime();
  const left = Date.parse(c.notAfter) - now;
  if (left > 0 && left <= settings.expiryWarningDays * DAY_MS) add('certificate-expiring', 'medium', `certificate ${c.serial} expires on ${c.notAfter} and its device has not renewed it`);
  if (c.lastUsedAt === null && now - Date.parse(c.createdAt) >= settings.unusedCertificateDays * DAY_MS) add('certificate-never-used', 'low', `certificate ${c.serial} was issued on ${c.createdAt} and has never been used to connect`);
  if (c.thingState === 'decommissioned') add('inactive-thing-certificate', 'high', `certificate ${c.serial} is still active although ${c.thing ?? 'its thing'} is decommissioned`);
  else if (c.thingState === 'suspended' || c.thingState === 'quarantined') add('inactive-thing-certificate', 'medium', `certificate ${c.serial} is active while ${c.thing ?? 'its thing'} is ${c.thingState}: revoke it if the thing will not return`);
  if (c.weakness !== null) add('weak-key', 'high', `certificate ${c.serial}: ${c.weakness}`);
  if (c.clientIds.length > 1) add('shared-certificate', 'high', `certificate ${c.serial} connected as ${c.clientIds.length} client ids (${c.clientIds.slice(0, 5).join(', ')}): it is probably copied onto several devices`);
  if (c.requireHardwareKey && c.keyStorage !== 'pkcs11' && c.keyStorage !== 'tpm') add('hardware-key-required', 'medium', `${c.thing ?? 'the thing'}'s type requires a hardware-held key, but certificate ${c.serial} declares ${c.keyStorage}`);
  return found;
}

function sharedKeys(certificates: readonly CertificateFacts[]): Finding[] {
  const byKey = groupBy(certificates.filter((c) => c.thing !== null), (c) => c.keyFingerprint);
  return [...byKey.values()]
    .filter((group) => new Set(group.map((c) => c.thing)).size > 1)
    .flatMap((group) => group.map((c) => ({ kind: 'shared-key' as const, severity: 'high' as const, thing: c.thing, serial: c.serial, caId: null, message: `the key of certificate ${c.serial} is also in certificates of ${[...new Set(group.map((g) => g.thing))].filter((t) => t !== c.thing).join(', ')}` })));
}

/** A renewal leaves two active certificates for the overlap window; longer than that, the old one is a spare credential. */
function multipleActive(certificates: readonly CertificateFacts[], { now, renewalWindowDays }: AuditSettings): Finding[] {
  const byThing = groupBy(certificates.filter((c) => c.thing !== null), (c) => c.thing as string);
  const findings: Finding[] = [];
  for (const [thing, group] of byThing) {
    if (group.length < 2) continue;
    const newest = group.reduce((a, b) => (Date.parse(b.createdAt) > Date.parse(a.createdAt) ? b : a));
    if (now.getTime() - Date.parse(newest.createdAt) <= renewalWindowDays * DAY_MS) continue;
    const older = group.filter((c) => c !== newest).map((c) => c.serial);
    findings.push({ kind: 'multiple-active-certificates', severity: 'medium', thing, serial: newest.serial, caId: null, message: `${thing} has ${group.length} active certificates for longer than the ${renewalWindowDays}-day rotation window: ${older.join(', ')} besides ${newest.serial}` });
  }
  return findings;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
