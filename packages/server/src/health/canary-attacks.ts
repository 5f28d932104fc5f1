import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { FleetwardError } from '@fleetward/protocol';
import { MetadataKind, type Metadata, type Root } from '@tufjs/models';
import type { ThrottleSettings } from '../access/throttling/index.js';
import type { AuditVerification } from '../audit/audit-log.js';
import type { IssuingCa } from '../identity/certificates.js';
import { IssuanceProfile } from '../identity/issuance-profile.js';
import { randomSerialNumber } from '../identity/keys.js';
import { signCertificate, toPem } from '../identity/pki/certificate.js';
import { basicConstraints, keyUsage } from '../identity/pki/extensions.js';
import { distinguishedName } from '../identity/pki/names.js';
import { softwareSigner } from '../identity/pki/signer.js';
import { addSignatures, generateTufKey, privateKeySigner } from '../updates/tuf/keys.js';
import { parse, proposeRoot, proposeTargets } from '../updates/tuf/repository-metadata.js';
import type { CanaryCredential, CanaryIdentitySet } from './canary-identities.js';
import { checkError, held, notHeld, type Verdict } from './controls.js';
import { connectPlain, connectTls, type ConnectOutcome, type MqttSession, type ProbeTarget } from './mqtt-probe.js';
import { ocspRequestFor, readCrl, readOcspResponse } from './revocation-answers.js';

/**
 * The attacks, one function per control: each takes what it needs and returns a Verdict. They run
 * against the node's real listeners over loopback; nothing here reaches into the gateway.
 */

export const PROBE_TIMEOUT_MS = 5_000;
const NOT_AUTHORIZED = 0x87;
const QUOTA_EXCEEDED = 0x97;
const hex = (code: number) => `0x${code.toString(16).padStart(2, '0')}`;

/** A connection attempt that must be refused at the TLS handshake (before any CONNACK). */
function refusedAtTls(outcome: ConnectOutcome, what: string, expectedAlert: RegExp): Verdict {
  if (outcome.kind === 'unreachable') return checkError(`could not reach the MQTT listener: ${outcome.detail}`);
  if (outcome.kind === 'connack') {
    outcome.session?.close();
    return notHeld(`${what}: the TLS handshake was accepted and the broker answered CONNACK ${hex(outcome.reasonCode)}${outcome.reasonCode === 0 ? ' (connected)' : ` (${outcome.reasonString ?? 'refused'}: only the admission check refused it)`}`);
  }
  // In TLS 1.3 the server's alert may be lost in a reset: a close before any CONNACK is a refusal all the same.
  if (outcome.tlsAlert === null) return held(`${what}: refused before any CONNACK (${outcome.detail})`);
  const alert = `TLS alert "${outcome.tlsAlert}"`;
  if (!expectedAlert.test(outcome.tlsAlert)) return held(`${what}: refused at the TLS handshake, but with ${alert} (expected ${expectedAlert.source})`);
  return held(`${what}: refused at the TLS handshake (${alert})`);
}

/** 1. A plain TCP MQTT CONNECT gets no CONNACK on any device port, and no plaintext listener is configured. */
export async function attackPlaintext(targets: readonly ProbeTarget[], configured: string): Promise<Verdict> {
  const seen: string[] = [];
  for (const target of targets) {
    const outcome = await connectPlain(target, 'fw-canary-plaintext', PROBE_TIMEOUT_MS);
    if (outcome.kind === 'unreachable') return checkError(`could not reach port ${target.port}: ${outcome.detail}`);
    if (outcome.kind === 'connack') {
      outcome.session?.close();
      return notHeld(`a plaintext MQTT CONNECT to port ${target.port} was answered with CONNACK ${hex(outcome.reasonCode)}: the port speaks MQTT without TLS`);
    }
    seen.push(`port ${target.port}: no CONNACK (${outcome.detail})`);
  }
  return held(`${seen.join('; ')}; ${configured}`);
}

/** 2. TLS without a client certificate. */
export async function attackNoClientCertificate(target: ProbeTarget, ca: string): Promise<Verdict> {
  return refusedAtTls(await connectTls(target, { ca }, 'fw-canary-anonymous', PROBE_TIMEOUT_MS), 'TLS without a client certificate', /certificate required|handshake failure/);
}

/** 3. A certificate for the canary's name from a CA made on the fly, which Fleetward never trusted. */
export async function attackUnknownCa(target: ProbeTarget, ca: string, canary: CanaryCredential, rogue: { readonly keyPem: string; readonly certPem: string }): Promise<Verdict> {
  const outcome = await connectTls(target, { ca, key: rogue.keyPem, cert: rogue.certPem }, canary.thing, PROBE_TIMEOUT_MS);
  return refusedAtTls(outcome, `a certificate for ${canary.thing} from an unknown CA`, /unknown ca|bad certificate|handshake failure|decrypt error/);
}

/** 4. The canary's own key and name, certified by the real issuing CA, but expired: only the expiry is wrong. */
export async function attackExpired(target: ProbeTarget, ca: string, canary: CanaryCredential, expiredCertPem: string): Promise<Verdict> {
  const outcome = await connectTls(target, { ca, key: canary.keyPem, cert: expiredCertPem }, canary.thing, PROBE_TIMEOUT_MS);
  return refusedAtTls(outcome, `an expired certificate from the issuing CA for ${canary.thing}`, /certificate expired/);
}

/** 5. The revoked canary certificate is refused at CONNECT, and the CRL and OCSP answers say so and are fresh. */
export async function attackRevoked(
  target: ProbeTarget,
  ca: string,
  revoked: CanaryCredential,
  revocation: { readonly apiUrl: string; readonly caId: string; readonly caCertificate: X509Certificate; readonly now: Date },
): Promise<Verdict> {
  const outcome = await connectTls(target, { ca, key: revoked.keyPem, cert: revoked.certPem }, revoked.thing, PROBE_TIMEOUT_MS);
  if (outcome.kind === 'unreachable') return checkError(`could not reach the MQTT listener: ${outcome.detail}`);
  if (outcome.kind === 'connack' && outcome.reasonCode === 0) {
    outcome.session?.close();
    return notHeld(`revoked certificate ${revoked.serial} connected (CONNACK 0x00)`);
  }
  const connect = outcome.kind === 'connack' ? `CONNACK ${hex(outcome.reasonCode)} (${outcome.reasonString ?? 'no reason'})` : `refused before CONNACK (${outcome.detail})`;
  const { apiUrl, caId, caCertificate, now } = revocation;
  const problems: string[] = [];
  let crlText = '';
  try {
    const crl = readCrl(await fetchBinary(`${apiUrl}/pki/crl/${caId}`, ca), caCertificate);
    if (!crl.signatureValid) problems.push('the CRL signature does not verify with the issuing CA');
    if (!crl.revoked.has(revoked.serial)) problems.push(`the CRL does not list ${revoked.serial}`);
    if (crl.nextUpdate === null || crl.nextUpdate <= now) problems.push(`the CRL is stale (nextUpdate ${crl.nextUpdate?.toISOString() ?? 'absent'})`);
    crlText = `CRL lists it, nextUpdate ${crl.nextUpdate?.toISOString() ?? 'absent'}`;
  } catch (error) {
    problems.push(`the CRL could not be read: ${messageOf(error)}`);
  }
  let ocspText = '';
  try {
    const ocsp = readOcspResponse(await fetchBinary(`${apiUrl}/pki/ocsp`, ca, ocspRequestFor(revoked.serial, caCertificate)), caCertificate);
    if (ocsp.responseStatus !== 0) problems.push(`OCSP answered status ${ocsp.responseStatus}`);
    else {
      if (!ocsp.signatureValid) problems.push('the OCSP answer signature does not verify with the issuing CA');
      if (ocsp.certStatus !== 'revoked') problems.push(`OCSP says ${ocsp.certStatus ?? 'nothing'} for ${revoked.serial}`);
      if (ocsp.nextUpdate === null || ocsp.nextUpdate <= now) problems.push(`the OCSP answer is stale (nextUpdate ${ocsp.nextUpdate?.toISOString() ?? 'absent'})`);
      ocspText = `OCSP says revoked, nextUpdate ${ocsp.nextUpdate?.toISOString() ?? 'absent'}`;
    }
  } catch (error) {
    problems.push(`the OCSP answer could not be read: ${messageOf(error)}`);
  }
  if (problems.length > 0) return notHeld(`revoked certificate ${revoked.serial}: ${connect}; ${problems.join('; ')}`);
  return held(`revoked certificate ${revoked.serial}: ${connect}; ${crlText}; ${ocspText}`);
}

/** 6 and 7 share the canary's connection: one admitted connect per run, so the canary never trips its own connect limits. */
export interface SessionAttacks {
  readonly crossThing: Verdict;
  readonly rateLimit: Verdict;
}

export async function attackAsDevice(target: ProbeTarget, ca: string, identities: CanaryIdentitySet, limits: ThrottleSettings): Promise<SessionAttacks> {
  const { canary, peer } = identities;
  const [attacker, victim] = await Promise.all([admitted(target, ca, canary), admitted(target, ca, peer)]);
  try {
    if (typeof attacker === 'string' || typeof victim === 'string') {
      const why = typeof attacker === 'string' ? attacker : (victim as string);
      return { crossThing: checkError(why), rateLimit: checkError(why) };
    }
    const crossThing = await crossThingAttack(attacker, victim, canary.thing, peer.thing);
    const rateLimit = await rateAttack(attacker, canary.thing, limits);
    return { crossThing, rateLimit };
  } finally {
    if (typeof attacker !== 'string') attacker.close();
    if (typeof victim !== 'string') victim.close();
  }
}

async function admitted(target: ProbeTarget, ca: string, credential: CanaryCredential): Promise<MqttSession | string> {
  const outcome = await connectTls(target, { ca, key: credential.keyPem, cert: credential.certPem }, credential.thing, PROBE_TIMEOUT_MS);
  if (outcome.kind === 'connack' && outcome.session !== null) return outcome.session;
  const why = outcome.kind === 'connack' ? `CONNACK ${hex(outcome.reasonCode)} (${outcome.reasonString ?? 'no reason'})` : outcome.detail;
  return `canary ${credential.thing} could not connect with its valid certificate: ${why}`;
}

/** 6. Publish and subscribe in another thing's namespaces: MQTT 5 0x87 from the policy, and nothing delivered. */
async function crossThingAttack(attacker: MqttSession, victim: MqttSession, self: string, other: string): Promise<Verdict> {
  const ownFilters = [`things/${other}/#`, `$fw/things/${other}/#`];
  for (const filter of ownFilters) {
    const ack = await victim.subscribe(filter, PROBE_TIMEOUT_MS);
    if (ack.reasonCode >= 0x80) return checkError(`the peer canary could not subscribe to its own ${filter}: SUBACK ${hex(ack.reasonCode)}`);
  }
  const failures: string[] = [];
  const seen: string[] = [];
  const marker = Buffer.from(JSON.stringify({ canary: self, at: Date.now() }));
  for (const topic of [`things/${other}/fw-canary`, `$fw/things/${other}/fw-canary`]) {
    const ack = await attacker.publish(topic, marker, PROBE_TIMEOUT_MS);
    // The policy's refusal carries no reason string; a data contract's 0x87 does, and means the policy let it through.
    if (ack.reasonCode === NOT_AUTHORIZED && ack.reasonString === undefined) seen.push(`PUBACK 0x87 for ${topic}`);
    else failures.push(`publish to ${topic} passed the policy: PUBACK ${hex(ack.reasonCode)}${ack.reasonString === undefined ? '' : ` (${ack.reasonString})`}`);
  }
  for (const filter of ownFilters) {
    const ack = await attacker.subscribe(filter, PROBE_TIMEOUT_MS);
    if (ack.reasonCode === NOT_AUTHORIZED) seen.push(`SUBACK 0x87 for ${filter}`);
    else failures.push(`subscription to ${filter} was granted: SUBACK ${hex(ack.reasonCode)}`);
  }
  // A delivery would follow the PUBACK at once on loopback; a short wait catches it.
  await new Promise((resolve) => setTimeout(resolve, 150));
  const delivered = victim.received.filter((p) => Buffer.from(p.payload).equals(marker));
  if (delivered.length > 0) failures.push(`${delivered.length} message(s) from ${self} reached ${other}`);
  if (failures.length > 0) return notHeld(`${self} → ${other}: ${failures.join('; ')}`);
  return held(`${self} → ${other}: ${seen.join('; ')}; nothing delivered to ${other}`);
}

/** 7. Publishes at QoS 1 in the canary's own namespace until the per-device rate limit refuses one (MQTT 5 0x97). */
async function rateAttack(attacker: MqttSession, self: string, limits: ThrottleSettings): Promise<Verdict> {
  const size = Math.max(1, Math.min(limits.maxPayloadBytes, 16 * 1024));
  const payload = Buffer.alloc(size, 0x2e);
  const budget = Math.min(limits.messageBurst, Math.ceil(limits.byteBurst / size));
  if (budget > 5_000) return checkError(`the device limits allow ${budget} messages at once (messageBurst ${limits.messageBurst}, byteBurst ${limits.byteBurst}): too many to exercise every run`);
  const started = Date.now();
  const topic = `things/${self}/fw-canary/rate`;
  for (let sent = 1; ; sent += 1) {
    const elapsed = (Date.now() - started) / 1000;
    const allowance = budget + Math.ceil(elapsed * Math.min(limits.messagesPerSecond, limits.bytesPerSecond / size)) + 5;
    if (sent > allowance) return notHeld(`${sent - 1} publishes of ${size} bytes in ${elapsed.toFixed(1)} s were all accepted by the rate limit (burst ${budget}, ${limits.messagesPerSecond}/s)`);
    let ack;
    try {
      ack = await attacker.publish(topic, payload, PROBE_TIMEOUT_MS);
    } catch (error) {
      const why = messageOf(error);
      if (/DISCONNECT 0x96/.test(why)) return held(`publish ${sent} of ${size} bytes: the connection was closed for its message rate (${why})`);
      return checkError(`publish ${sent}: ${why}`);
    }
    if (ack.reasonCode === QUOTA_EXCEEDED && /rate limit/.test(ack.reasonString ?? '')) {
      return held(`publish ${sent} of ${size} bytes refused with PUBACK 0x97 (${ack.reasonString}) after a burst of ${budget} allowed`);
    }
  }
}

/** 8. Tampered update metadata: one byte of the signed targets flipped must fail signature verification. */
export async function attackUpdateMetadata(repository: { status(): Promise<{ root: { version: number } | null; targets: { version: number } | null }>; metadataFile(name: string): Promise<Buffer | null> }, now: Date): Promise<Verdict> {
  const status = await repository.status();
  if (status.root === null) return { status: 'not-applicable', detail: 'no TUF root is set up: updates are not configured' };
  let root: Metadata<Root>;
  let body: Buffer;
  let source: string;
  if (status.targets !== null) {
    const rootBody = await repository.metadataFile(`${status.root.version}.root.json`);
    const targetsBody = await repository.metadataFile(`${status.targets.version}.targets.json`);
    if (rootBody === null || targetsBody === null) return checkError('the metadata in force could not be read');
    root = parse(MetadataKind.Root, JSON.parse(rootBody.toString('utf8')));
    body = targetsBody;
    source = `targets v${status.targets.version} in force`;
  } else {
    ({ root, body } = await inMemoryTargets(now));
    source = 'targets signed in memory with a throwaway key (no targets in force)';
  }
  const verifies = (json: unknown): string | null => {
    try {
      root.verifyDelegate(MetadataKind.Targets, parse(MetadataKind.Targets, json));
      return null;
    } catch (error) {
      return error instanceof FleetwardError ? `${error.code}: ${error.message}` : messageOf(error);
    }
  };
  const baseline = verifies(JSON.parse(body.toString('utf8')));
  if (baseline !== null) return checkError(`${source} does not verify as stored (${baseline}): nothing to tamper with`);
  const tampered = flipExpiryByte(body);
  if (tampered === null) return checkError(`${source} has no expiry to tamper with`);
  const refusal = verifies(JSON.parse(tampered.toString('utf8')));
  if (refusal === null) return notHeld(`${source} with one byte of its signed expiry flipped still verified`);
  return held(`${source} with one byte of its signed expiry flipped was refused (${refusal === 'FW_ERR_VALIDATION' ? 'malformed' : 'signature'}: ${refusal})`);
}

/** Flips the low bit of the last digit of `signed.expires` (seconds: the result is still a valid time, and valid JSON). */
export function flipExpiryByte(body: Buffer): Buffer | null {
  const match = /"expires"\s*:\s*"[0-9T:-]+?(\d)Z"/.exec(body.toString('latin1'));
  if (match === null) return null;
  const at = match.index + match[0].length - 3;
  const copy = Buffer.from(body);
  copy[at] = (copy[at] as number) ^ 1;
  return copy;
}

async function inMemoryTargets(now: Date): Promise<{ root: Metadata<Root>; body: Buffer }> {
  const key = generateTufKey();
  const signer = privateKeySigner(key.privateKeyPem);
  const expires = new Date(now.getTime() + 86_400_000);
  const root = proposeRoot(null, { rootKeys: [key.publicKey], rootThreshold: 1, targetsKeys: [key.publicKey], targetsThreshold: 1, snapshotKey: key.publicKey, timestampKey: key.publicKey, expires });
  const targets = proposeTargets(null, [], expires).toJSON() as { signed: unknown; signatures: { keyid: string; sig: string }[] };
  const signed = await addSignatures(targets, [signer]);
  return { root, body: Buffer.from(JSON.stringify(signed)) };
}

/** 9. The audit chain verifies end to end. */
export async function attackAuditChain(audit: { verify(): Promise<AuditVerification> }): Promise<Verdict> {
  const result = await audit.verify();
  if (result.ok) return held(`${result.checked} events verified${result.head === null ? '' : ` up to #${result.head.seq}`}`);
  return notHeld(`the audit chain is broken: ${result.firstBreak?.message ?? 'unknown break'}${result.firstBreak === null ? '' : ` (event #${result.firstBreak.seq})`}`);
}

/** An expired certificate for the canary's key from the real issuing CA: valid in every way but time. Never stored, never valid. */
export async function expiredCertificate(issuing: IssuingCa, canary: CanaryCredential, now: Date): Promise<string> {
  const spki = createPublicKey(canary.keyPem).export({ type: 'spki', format: 'der' });
  const der = await signCertificate(
    issuing.profile.fields({ serial: randomSerialNumber(), kind: 'device', name: canary.thing, subjectPublicKeyInfo: spki, notBefore: new Date(now.getTime() - 2 * 86_400_000), notAfter: new Date(now.getTime() - 86_400_000) }),
    issuing.signer,
  );
  return toPem(der, 'CERTIFICATE') + (issuing.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? '');
}

/** A CA made on the fly, and a certificate from it for the canary's name: what an attacker with their own CA would present. */
export async function rogueCertificate(thing: string, now: Date): Promise<{ keyPem: string; certPem: string }> {
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caSpki = caKeys.publicKey.export({ type: 'spki', format: 'der' });
  const name = distinguishedName([['CN', 'Fleetward Canary Rogue CA'], ['O', 'not Fleetward']]);
  const caDer = await signCertificate(
    { serial: randomSerialNumber(), issuer: name, subject: name, subjectPublicKeyInfo: caSpki, notBefore: new Date(now.getTime() - 3_600_000), notAfter: new Date(now.getTime() + 30 * 86_400_000), extensions: [basicConstraints(true, 0), keyUsage(['keyCertSign', 'cRLSign'])] },
    softwareSigner(caKeys.privateKey),
  );
  const caCertificate = new X509Certificate(caDer);
  const leafKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const profile = new IssuanceProfile('rogue', caCertificate, { base: 'https://rogue.invalid' });
  const leafDer = await signCertificate(
    profile.fields({ serial: randomSerialNumber(), kind: 'device', name: thing, subjectPublicKeyInfo: leafKeys.publicKey.export({ type: 'spki', format: 'der' }), notBefore: new Date(now.getTime() - 3_600_000), notAfter: new Date(now.getTime() + 30 * 86_400_000) }),
    softwareSigner(caKeys.privateKey),
  );
  return { keyPem: leafKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem: toPem(leafDer, 'CERTIFICATE') + toPem(caDer, 'CERTIFICATE') };
}

/** GET (or POST an OCSP request to) the node's own API over TLS, verifying its chain; the body, or an error for a non-200. */
function fetchBinary(url: string, ca: string, body?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: body === undefined ? 'GET' : 'POST', ca, checkServerIdentity: () => undefined, timeout: PROBE_TIMEOUT_MS, headers: body === undefined ? {} : { 'content-type': 'application/ocsp-request', 'content-length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${url} answered HTTP ${res.statusCode ?? '?'}`))));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url} did not answer within ${PROBE_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
