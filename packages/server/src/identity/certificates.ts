import type { X509Certificate } from 'node:crypto';
import type { Transaction } from 'kysely';
import { FleetwardError, type ErrorCode } from '@fleetward/protocol';
import type { AuditLog } from '../audit/audit-log.js';
import { actorFields, type Actor, type AuditEvent } from '../audit/audit-events.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/settings.js';
import type { JsonValue } from '../json.js';
import type { Store } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import { BACKDATE_MS } from './certificate-authority.js';
import {
  revokeCertificates,
  selectCertificates,
  toCertificateInfo,
  type CertificateInfo,
  type IssuePath,
  type KeyStorage,
  type RevocationReason,
} from './certificate-repository.js';
import type { IdentityEvents } from './events.js';
import type { CertificateKind, IssuanceProfile } from './issuance-profile.js';
import { daysAfter, randomSerialNumber } from './keys.js';
import { keyFingerprint, signCertificate, toPem } from './pki/certificate.js';
import { parseCertificateRequest, type CertificateRequest } from './pki/csr.js';
import type { Signer } from './pki/signer.js';
import { isThingName } from './registry/names.js';
import type { Things } from './registry/things.js';

/** The issuing CA new certificates come from (it changes when the issuing CA is rotated). */
export interface IssuingCa {
  readonly id: string;
  readonly profile: IssuanceProfile;
  readonly signer: Signer;
  /** Issuing CA then root, PEM. */
  readonly chainPem: string;
  readonly notAfter: Date;
}

export interface CertificateRequestInput {
  /** The thing (device certificates) or template (claim certificates) the certificate is for. */
  readonly subject: string;
  readonly kind: CertificateKind;
  readonly csr: Buffer | string;
  readonly via: IssuePath;
  readonly keyStorage?: KeyStorage;
  readonly attestation?: Readonly<Record<string, JsonValue>>;
  readonly template?: string;
  /** The certificate this one renews (same thing, new key). */
  readonly replaces?: string;
  readonly validityDays?: number;
}

export interface IssuedCertificate {
  readonly serial: string;
  readonly subject: string;
  readonly certificatePem: string;
  /** Issuing CA then root. */
  readonly chainPem: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

/** A request that parsed, passed the checks that need no database, and is signed. */
export interface PreparedCertificate {
  readonly input: CertificateRequestInput;
  readonly request: CertificateRequest;
  readonly fingerprint: string;
  readonly serial: string;
  readonly pem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly ca: IssuingCa;
}

export interface CertificateQuery {
  readonly thing?: string;
  readonly status?: 'active' | 'revoked';
  readonly kind?: CertificateKind;
  readonly after?: string;
  readonly limit: number;
}

export interface CertificatesDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly events: IdentityEvents;
  readonly things: Things;
  readonly issuing: () => Promise<IssuingCa>;
  readonly config: Config['pki'];
}

const MAX_BATCH = 500;
export const MAX_VALIDITY_DAYS = 397;

interface Pending {
  readonly prepared: PreparedCertificate;
  readonly actor: Actor;
  readonly resolve: (issued: IssuedCertificate) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Issues certificates from CSRs — the device's private key never leaves the device — and revokes
 * them. Requests arriving together are committed in one transaction, so issuance keeps up with a
 * production line; each request still succeeds or fails on its own.
 */
export class Certificates {
  readonly #deps: CertificatesDependencies;
  #queue: Pending[] = [];
  #draining: Promise<void> | null = null;

  constructor(deps: CertificatesDependencies) {
    this.#deps = deps;
  }

  /** Issues a certificate; refusals are audited and change nothing. */
  async issue(input: CertificateRequestInput, actor: Actor): Promise<IssuedCertificate> {
    let prepared: PreparedCertificate;
    try {
      prepared = await this.prepare(input);
    } catch (error) {
      await this.recordRefusal(input, codeOf(error), actor);
      throw error;
    }
    return new Promise<IssuedCertificate>((resolve, reject) => {
      this.#queue.push({ prepared, actor, resolve, reject });
      this.#draining ??= new Promise<void>((done) => setImmediate(done)).then(() => this.#drain());
    });
  }

  /**
   * Device-initiated renewal: the device proves possession of its current certificate (verified by
   * TLS) and sends a CSR for a new key. The new certificate replaces the current one, which stays
   * valid for the overlap window (`retireSuperseded` ends it).
   */
  async renew(request: { readonly current: X509Certificate; readonly csr: Buffer | string; readonly via: 'est' | 'renewal'; readonly keyStorage?: KeyStorage; readonly attestation?: Readonly<Record<string, JsonValue>>; readonly source?: string }): Promise<IssuedCertificate> {
    const serial = serialOf(request.current);
    const info = await this.get(serial).catch(() => null);
    const actor = { name: `thing:${info?.thing ?? 'unknown'}`, ...(request.source !== undefined && { source: request.source }) };
    const refuse = async (error: FleetwardError): Promise<never> => {
      await this.recordRefusal({ subject: info?.thing ?? serial, kind: 'device', via: request.via }, error.code, actor);
      throw error;
    };
    if (info === null || info.kind !== 'device' || info.thing === null) return refuse(new FleetwardError('FW_ERR_UNAUTHENTICATED', 'this certificate is not a device certificate Fleetward issued'));
    if (info.status !== 'active') return refuse(new FleetwardError('FW_ERR_CERT_REVOKED', `certificate ${serial} is revoked`, { serial }));
    if (Date.parse(info.notAfter) <= this.#deps.clock.now().getTime()) return refuse(new FleetwardError('FW_ERR_UNAUTHENTICATED', `certificate ${serial} has expired; provision the device again`, { serial }));
    return this.issue(
      {
        subject: info.thing,
        kind: 'device',
        csr: request.csr,
        via: request.via,
        replaces: serial,
        keyStorage: request.keyStorage ?? info.keyStorage,
        ...(info.template !== null && { template: info.template }),
        ...(request.attestation !== undefined && { attestation: request.attestation }),
      },
      actor,
    );
  }

  /** Waits until every issuance accepted so far is committed or refused. */
  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Parses and checks the CSR against the request, then signs: the work that needs no database. */
  async prepare(input: CertificateRequestInput): Promise<PreparedCertificate> {
    const request = parseCertificateRequest(input.csr);
    if (input.kind === 'device' && !isThingName(input.subject)) throw new FleetwardError('FW_ERR_VALIDATION', `thing name ${JSON.stringify(input.subject)} is invalid`, { field: 'thing' });
    if (request.subjectCommonName !== input.subject) {
      throw new FleetwardError('FW_ERR_NAME_MISMATCH', `the CSR names ${JSON.stringify(request.subjectCommonName)}, not ${input.subject}: its subject CN must be the ${input.kind === 'device' ? 'thing' : 'template'} name`, {
        expected: input.subject,
        found: request.subjectCommonName,
      });
    }
    const validityDays = input.validityDays ?? (input.kind === 'device' ? this.#deps.config.deviceCertValidityDays : this.#deps.config.claimCertValidityDays);
    if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > (input.kind === 'device' ? MAX_VALIDITY_DAYS : 3650)) {
      throw new FleetwardError('FW_ERR_VALIDATION', `certificate validity must be a whole number of days between 1 and ${MAX_VALIDITY_DAYS}`, { field: 'validityDays' });
    }
    const ca = await this.#deps.issuing();
    const now = this.#deps.clock.now();
    const notBefore = new Date(now.getTime() - BACKDATE_MS);
    const notAfter = new Date(Math.min(daysAfter(now, validityDays).getTime(), ca.notAfter.getTime()));
    const serialBytes = randomSerialNumber();
    const der = await signCertificate(ca.profile.fields({ serial: serialBytes, kind: input.kind, name: input.subject, subjectPublicKeyInfo: request.subjectPublicKeyInfo, notBefore, notAfter }), ca.signer);
    return { input, request, fingerprint: keyFingerprint(request.subjectPublicKeyInfo), serial: serialBytes.toString('hex'), pem: toPem(der, 'CERTIFICATE'), notBefore, notAfter, ca };
  }

  /**
   * Records prepared certificates inside the caller's transaction, after the checks that need the
   * database: the thing exists and may receive a certificate, its type's key requirement, the key
   * belongs to no other thing, a renewal brings a new key. Returns each one's outcome; a refused one
   * writes nothing. Pending things become active with their first certificate.
   */
  async commitWithin(trx: Transaction<Tables>, items: readonly { readonly prepared: PreparedCertificate; readonly actor: Actor }[]): Promise<{ readonly results: readonly (IssuedCertificate | FleetwardError)[]; readonly activated: readonly string[] }> {
    const deviceNames = [...new Set(items.filter((i) => i.prepared.input.kind === 'device').map((i) => i.prepared.input.subject))];
    const things = deviceNames.length === 0 ? [] : await trx.selectFrom('things').leftJoin('thing_types', 'thing_types.name', 'things.type').select(['things.id', 'things.name', 'things.state', 'thing_types.require_hardware_key']).where('things.name', 'in', deviceNames).execute();
    const fingerprints = [...new Set(items.map((i) => i.prepared.fingerprint))];
    const bound = new Map((await trx.selectFrom('certificate_keys').select(['key_fingerprint', 'thing_id']).where('key_fingerprint', 'in', fingerprints).execute()).map((r) => [r.key_fingerprint, r.thing_id]));
    const replaced = await this.#replacedCertificates(trx, items);
    const now = this.#deps.clock.now().toISOString();
    const results: (IssuedCertificate | FleetwardError)[] = [];
    const rows: Tables['certificates'][] = [];
    const newBindings: Tables['certificate_keys'][] = [];
    const events: AuditEvent[] = [];
    const activate = new Map<string, { id: string; name: string; actor: Actor }>();
    for (const { prepared, actor } of items) {
      const { input } = prepared;
      const thing = input.kind === 'device' ? things.find((t) => t.name === input.subject) : undefined;
      const refusal = this.#refusal(prepared, thing, bound, replaced);
      if (refusal) {
        results.push(refusal);
        continue;
      }
      if (thing !== undefined) {
        if (!bound.has(prepared.fingerprint)) newBindings.push({ key_fingerprint: prepared.fingerprint, thing_id: thing.id, created_at: now });
        bound.set(prepared.fingerprint, thing.id);
        if (thing.state === 'pending') activate.set(thing.id, { id: thing.id, name: thing.name, actor });
      }
      rows.push(this.#row(prepared, thing?.id ?? null, actor, now));
      events.push({
        ...actorFields(actor),
        action: 'certificate.issue',
        outcome: 'success',
        target: input.kind === 'device' ? `thing:${input.subject}` : `template:${input.subject}`,
        details: { serial: prepared.serial, ca: prepared.ca.id, via: input.via, keyAlgorithm: prepared.request.key.algorithm, keyStorage: input.keyStorage ?? 'unknown', notAfter: prepared.notAfter.toISOString(), ...(input.replaces !== undefined && { replaces: input.replaces }) },
      });
      results.push(issuedFrom(prepared));
    }
    for (let i = 0; i < rows.length; i += 200) await trx.insertInto('certificates').values(rows.slice(i, i + 200)).execute();
    for (let i = 0; i < newBindings.length; i += 500) await trx.insertInto('certificate_keys').values(newBindings.slice(i, i + 500)).execute();
    for (const thing of activate.values()) await this.#deps.things.transitionWithin(trx, { id: thing.id, name: thing.name, state: 'pending' }, 'active', thing.actor, 'first certificate issued');
    if (events.length > 0) await this.#deps.audit.recordWithin(trx, events);
    return { results, activated: [...activate.values()].map((t) => t.name) };
  }

  #refusal(
    prepared: PreparedCertificate,
    thing: { id: string; name: string; state: string; require_hardware_key: number | null } | undefined,
    bound: ReadonlyMap<string, string>,
    replaced: ReadonlyMap<string, { thing_id: string | null; status: string; key_fingerprint: string }>,
  ): FleetwardError | null {
    const { input } = prepared;
    if (input.kind === 'device') {
      if (thing === undefined) return new FleetwardError('FW_ERR_NOT_FOUND', `thing ${input.subject} does not exist`, { thing: input.subject });
      if (thing.state !== 'pending' && thing.state !== 'active') {
        return new FleetwardError('FW_ERR_THING_STATE', `thing ${input.subject} is ${thing.state}: it cannot receive a certificate`, { thing: input.subject, state: thing.state });
      }
      const storage = input.keyStorage ?? 'unknown';
      if (thing.require_hardware_key === 1 && storage !== 'pkcs11' && storage !== 'tpm') {
        return new FleetwardError('FW_ERR_KEY_REJECTED', `things of this type must hold their key in hardware (pkcs11 or tpm), not ${storage}`, { keyStorage: storage });
      }
      const owner = bound.get(prepared.fingerprint);
      if (owner !== undefined && owner !== thing.id) return new FleetwardError('FW_ERR_KEY_REUSED', 'this public key already belongs to another thing; every device needs its own key pair', { thing: input.subject });
    }
    if (input.replaces !== undefined) {
      const old = replaced.get(input.replaces);
      if (old === undefined || old.thing_id !== (thing?.id ?? null)) return new FleetwardError('FW_ERR_NOT_FOUND', `certificate ${input.replaces} of ${input.subject} does not exist`, { serial: input.replaces });
      if (old.status !== 'active') return new FleetwardError('FW_ERR_CERT_REVOKED', `certificate ${input.replaces} is revoked and cannot be renewed`, { serial: input.replaces });
      if (old.key_fingerprint === prepared.fingerprint) return new FleetwardError('FW_ERR_KEY_REUSED', 'a renewal must bring a new key pair', { serial: input.replaces });
    }
    return null;
  }

  async #replacedCertificates(trx: Transaction<Tables>, items: readonly { readonly prepared: PreparedCertificate }[]) {
    const serials = items.map((i) => i.prepared.input.replaces).filter((s): s is string => s !== undefined);
    if (serials.length === 0) return new Map<string, { thing_id: string | null; status: string; key_fingerprint: string }>();
    const rows = await trx.selectFrom('certificates').select(['serial', 'thing_id', 'status', 'key_fingerprint']).where('serial', 'in', serials).execute();
    return new Map(rows.map((r) => [r.serial, r]));
  }

  #row(prepared: PreparedCertificate, thingId: string | null, actor: Actor, now: string): Tables['certificates'] {
    const { input } = prepared;
    return {
      serial: prepared.serial,
      ca_id: prepared.ca.id,
      thing_id: thingId,
      kind: input.kind,
      template: input.template ?? null,
      subject_cn: input.subject,
      key_fingerprint: prepared.fingerprint,
      key_algorithm: prepared.request.key.algorithm,
      key_storage: input.keyStorage ?? 'unknown',
      attestation: input.attestation === undefined ? null : JSON.stringify(input.attestation),
      issued_via: input.via,
      issued_by: actor.name,
      not_before: prepared.notBefore.toISOString(),
      not_after: prepared.notAfter.toISOString(),
      status: 'active',
      revoked_at: null,
      revocation_reason: null,
      must_rotate: 0,
      replaces: input.replaces ?? null,
      last_used_at: null,
      pem: prepared.pem,
      created_at: now,
    };
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_BATCH);
      try {
        const { results, activated } = await this.#deps.store.db.transaction().execute((trx) => this.commitWithin(trx, batch));
        const issuedTo: string[] = [];
        for (const [i, pending] of batch.entries()) {
          const result = results[i];
          if (result instanceof FleetwardError) {
            await this.recordRefusal(pending.prepared.input, result.code, pending.actor).catch(() => undefined);
            pending.reject(result);
          } else {
            if (pending.prepared.input.kind === 'device') issuedTo.push(pending.prepared.input.subject);
            pending.resolve(result as IssuedCertificate);
          }
        }
        for (const thing of activated) this.#deps.events.emit('thingStateChanged', { thing, from: 'pending', to: 'active' });
        if (issuedTo.length > 0) this.#deps.events.emit('certificatesIssued', { things: issuedTo });
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    this.#draining = null;
  }

  /** Audits a refused request (outside any transaction: nothing else was written). */
  async recordRefusal(input: Pick<CertificateRequestInput, 'subject' | 'kind' | 'via'>, code: ErrorCode, actor: Actor): Promise<void> {
    const subject = input.subject.slice(0, 200);
    await this.#deps.audit.record({ ...actorFields(actor), action: 'certificate.issue', outcome: 'denied', target: input.kind === 'device' ? `thing:${subject}` : `template:${subject}`, details: { via: input.via, reason: code } });
  }

  async get(serial: string): Promise<CertificateInfo> {
    const row = await selectCertificates(this.#deps.store.db).where('certificates.serial', '=', serial.toLowerCase()).executeTakeFirst();
    if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `certificate ${serial} does not exist`, { serial });
    return toCertificateInfo(row);
  }

  async list(query: CertificateQuery): Promise<{ readonly certificates: readonly CertificateInfo[]; readonly next: string | null }> {
    const limit = Math.min(Math.max(1, query.limit), 500);
    let select = selectCertificates(this.#deps.store.db);
    if (query.thing !== undefined) select = select.where('things.name', '=', query.thing);
    if (query.status !== undefined) select = select.where('certificates.status', '=', query.status);
    if (query.kind !== undefined) select = select.where('certificates.kind', '=', query.kind);
    if (query.after !== undefined) select = select.where('certificates.serial', '>', query.after);
    const rows = await select.orderBy('certificates.serial').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return { certificates: page.map(toCertificateInfo), next: rows.length > limit ? (page.at(-1)?.serial ?? null) : null };
  }

  /** Revokes one certificate. Revocation is final. */
  async revoke(serial: string, reason: RevocationReason, actor: Actor): Promise<CertificateInfo> {
    const info = await this.get(serial);
    if (info.status === 'revoked') throw new FleetwardError('FW_ERR_CONFLICT', `certificate ${serial} is already revoked`, { serial });
    await this.#deps.store.db.transaction().execute(async (trx) => {
      await revokeCertificates(trx, { serials: [info.serial] }, reason, this.#deps.clock.now());
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'certificate.revoke', outcome: 'success', target: info.thing ? `thing:${info.thing}` : `template:${info.subject}`, details: { serials: [info.serial], reason } }]);
    });
    this.#deps.events.emit('certificatesRevoked', { thing: info.thing, serials: [info.serial], reason });
    return this.get(serial);
  }

  /** Revokes every active certificate of a thing. */
  async revokeThing(name: string, reason: RevocationReason, actor: Actor): Promise<readonly string[]> {
    const serials = await this.#deps.store.db.transaction().execute(async (trx) => {
      const thing = await this.#deps.things.ref(trx, name);
      const revoked = await revokeCertificates(trx, { thingId: thing.id }, reason, this.#deps.clock.now());
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'certificate.revoke', outcome: 'success', target: `thing:${name}`, details: { serials: revoked, reason } }]);
      return revoked;
    });
    if (serials.length > 0) this.#deps.events.emit('certificatesRevoked', { thing: name, serials, reason });
    return serials;
  }

  /** Marks a certificate "must rotate": the device is told to renew it with a new key. */
  async requestRotation(serial: string, actor: Actor): Promise<CertificateInfo> {
    const info = await this.get(serial);
    if (info.status !== 'active' || info.thing === null) throw new FleetwardError('FW_ERR_CONFLICT', `certificate ${serial} is not an active device certificate`, { serial });
    await this.#deps.store.db.transaction().execute(async (trx) => {
      await trx.updateTable('certificates').set({ must_rotate: 1 }).where('serial', '=', info.serial).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'certificate.rotate-requested', outcome: 'success', target: `thing:${info.thing}`, details: { serial: info.serial } }]);
    });
    this.#deps.events.emit('rotationRequested', { thing: info.thing, serial: info.serial });
    return this.get(serial);
  }

  /**
   * Ends overlap windows: a certificate that was renewed more than the renewal window ago is
   * revoked as superseded. Run by the job runner; returns the serials it revoked.
   */
  async retireSuperseded(now: Date, actor: Actor): Promise<readonly string[]> {
    const cutoff = new Date(now.getTime() - this.#deps.config.renewalWindowDays * 86_400_000).toISOString();
    const serials = await this.#deps.store.db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('certificates as renewal')
        .innerJoin('certificates as old', 'old.serial', 'renewal.replaces')
        .select('old.serial')
        .where('old.status', '=', 'active')
        .where('renewal.created_at', '<=', cutoff)
        .execute();
      const revoked = await revokeCertificates(trx, { serials: rows.map((r) => r.serial) }, 'superseded', now);
      if (revoked.length > 0) await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'certificate.revoke', outcome: 'success', details: { serials: revoked, reason: 'superseded' } }]);
      return revoked;
    });
    if (serials.length > 0) this.#deps.events.emit('certificatesRevoked', { thing: null, serials, reason: 'superseded' });
    return serials;
  }
}

/** A certificate's serial as Fleetward stores it (lower-case hex, no sign byte). */
export function serialOf(certificate: Pick<X509Certificate, 'serialNumber'>): string {
  return certificate.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');
}

export function codeOf(error: unknown): ErrorCode {
  return error instanceof FleetwardError ? error.code : 'FW_ERR_INTERNAL';
}

function issuedFrom(prepared: PreparedCertificate): IssuedCertificate {
  return {
    serial: prepared.serial,
    subject: prepared.input.subject,
    certificatePem: prepared.pem,
    chainPem: prepared.ca.chainPem,
    notBefore: prepared.notBefore.toISOString(),
    notAfter: prepared.notAfter.toISOString(),
  };
}

