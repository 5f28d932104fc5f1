import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../audit/audit-log.js';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import { caSummaries, insertCa, type CaSummary } from './ca-repository.js';
import { codeOf, serialOf } from './certificates.js';
import { validAt } from './keys.js';
import { keyFingerprint, fromPem } from './pki/certificate.js';
import { subjectPublicKeyInfoOf } from './pki/certificate-parts.js';
import { checkDeviceKey } from './pki/key-policy.js';
import { denied } from './provisioning/enrollment-tokens.js';
import { wholeMatch, type ProvisioningTemplates, type TemplatePolicies } from './provisioning/templates.js';
import { thingName } from './registry/names.js';
import type { Things } from './registry/things.js';

/** How long a registration code may be used for proof of possession. */
const CODE_TTL_MS = 24 * 3_600_000;

export interface ThirdPartyCaDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly templates: ProvisioningTemplates;
  readonly things: Things;
  readonly templatePolicies: TemplatePolicies;
}

/**
 * Third-party CAs a manufacturer already uses. A CA is registered only with proof of possession of
 * its key: a verification certificate it signed over a registration code from Fleetward. A device
 * whose certificate chains to a registered CA is then registered just in time, on first contact,
 * from the CA's template. Fleetward holds no key of these CAs, so it publishes no CRL for them:
 * their devices' certificates are revoked in the registry, which admission checks.
 */
export class ThirdPartyCas {
  readonly #deps: ThirdPartyCaDependencies;

  constructor(deps: ThirdPartyCaDependencies) {
    this.#deps = deps;
  }

  /** A fresh code to put as the CN of the verification certificate. */
  async registrationCode(): Promise<{ readonly code: string; readonly expiresAt: string }> {
    const now = this.#deps.clock.now();
    const code = randomBytes(20).toString('hex');
    const expiresAt = new Date(now.getTime() + CODE_TTL_MS).toISOString();
    await this.#deps.store.db.insertInto('ca_registration_codes').values({ code, created_at: now.toISOString(), expires_at: expiresAt, used_at: null }).execute();
    return { code, expiresAt };
  }

  async register(request: { readonly caPem: string; readonly verificationPem: string; readonly template?: string }, actor: Actor): Promise<CaSummary> {
    try {
      return await this.#register(request, actor);
    } catch (error) {
      await this.#deps.audit.record({ ...actorFields(actor), action: 'ca.register', outcome: 'denied', details: { code: codeOf(error) } });
      throw error;
    }
  }

  async #register(request: { readonly caPem: string; readonly verificationPem: string; readonly template?: string }, actor: Actor): Promise<CaSummary> {
    const ca = singleCertificate(request.caPem, 'CA certificate');
    const verification = singleCertificate(request.verificationPem, 'verification certificate');
    const now = this.#deps.clock.now();
    if (!ca.ca) throw new FleetwardError('FW_ERR_VALIDATION', 'the certificate is not a CA certificate (basic constraints CA:TRUE)', { field: 'caCertificate' });
    if (!validAt(ca, now)) throw new FleetwardError('FW_ERR_VALIDATION', 'the CA certificate is not valid now', { field: 'caCertificate' });
    const key = checkDeviceKey(subjectPublicKeyInfoOf(ca));
    // Proof of possession: only the holder of the CA key can sign a certificate over our code.
    if (!verification.checkIssued(ca) || !verification.verify(ca.publicKey)) {
      throw new FleetwardError('FW_ERR_ENROLLMENT_DENIED', 'the verification certificate is not signed by this CA: no proof of possession of its key', { reason: 'no-proof-of-possession' });
    }
    const code = /(?:^|\n)CN=([0-9a-f]{40})(?:\n|$)/.exec(verification.subject)?.[1];
    if (request.template !== undefined) await this.#deps.templates.get(request.template);
    const id = createHash('sha256').update(ca.raw).digest('hex').slice(0, 32);
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const claimed = code === undefined ? undefined : await trx.updateTable('ca_registration_codes').set({ used_at: now.toISOString() }).where('code', '=', code).where('used_at', 'is', null).where('expires_at', '>', now.toISOString()).returning('code').executeTakeFirst();
      if (!claimed) throw new FleetwardError('FW_ERR_ENROLLMENT_DENIED', 'the verification certificate\'s CN is not a current, unused registration code (`fleetward ca registration-code`)', { reason: 'bad-registration-code' });
      if (await trx.selectFrom('certificate_authorities').select('id').where('id', '=', id).executeTakeFirst()) throw new FleetwardError('FW_ERR_CONFLICT', 'this CA is already registered', { ca: id });
      await insertCa(trx, { id, role: 'external', status: 'active', keyAlgorithm: key.algorithm, certificate: ca }, null, now);
      await trx.insertInto('registered_cas').values({ ca_id: id, template: request.template ?? null, registered_by: actor.name, created_at: now.toISOString() }).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'ca.register', outcome: 'success', target: `ca:${id}`, details: { subject: ca.subject.split('\n').join(', '), template: request.template ?? null } }]);
    });
    return (await caSummaries(this.#deps.store.db)).find((c) => c.id === id) as CaSummary;
  }

  /** Retires a registered CA: its devices are refused from then on. */
  async deregister(caId: string, actor: Actor): Promise<void> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const registered = await trx.selectFrom('registered_cas').select('ca_id').where('ca_id', '=', caId).executeTakeFirst();
      if (!registered) throw new FleetwardError('FW_ERR_NOT_FOUND', `no registered CA ${caId}`, { ca: caId });
      await trx.updateTable('certificate_authorities').set({ status: 'retired' }).where('id', '=', caId).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'ca.deregister', outcome: 'success', target: `ca:${caId}` }]);
    });
  }

  /**
   * The first contact of a device with a certificate from a registered CA: creates the thing from
   * the CA's template and records the certificate, once. Later contacts find the record. The
   * caller (the gateway) passes the certificate chain TLS verified; it is checked again here.
   */
  async justInTimeRegister(leaf: X509Certificate, source?: string): Promise<{ readonly thing: string; readonly serial: string; readonly created: boolean }> {
    const actor = { name: 'jitr', ...(source !== undefined && { source }) };
    let name = '(unknown)';
    try {
      const { db } = this.#deps.store;
      const now = this.#deps.clock.now();
      const cas = await db.selectFrom('registered_cas').innerJoin('certificate_authorities', 'certificate_authorities.id', 'registered_cas.ca_id').select(['registered_cas.ca_id', 'registered_cas.template', 'certificate_authorities.cert_pem', 'certificate_authorities.status']).execute();
      const issuer = cas.map((c) => ({ ...c, certificate: new X509Certificate(c.cert_pem) })).find((c) => leaf.checkIssued(c.certificate) && leaf.verify(c.certificate.publicKey));
      if (!issuer || issuer.status !== 'active') throw denied('unknown');
      if (!validAt(leaf, now) || leaf.ca) throw new FleetwardError('FW_ERR_UNAUTHENTICATED', 'the device certificate is not valid now, or is a CA certificate');
      // Third-party serials may collide across CAs: the row is keyed by CA and serial.
      const serial = `${issuer.ca_id}:${serialOf(leaf)}`;
      const known = await db.selectFrom('certificates').leftJoin('things', 'things.id', 'certificates.thing_id').select(['certificates.status', 'things.name']).where('certificates.serial', '=', serial).executeTakeFirst();
      if (known) {
        if (known.status !== 'active') throw new FleetwardError('FW_ERR_CERT_REVOKED', 'this device certificate is revoked', { serial });
        return { thing: known.name ?? '', serial, created: false };
      }
      if (issuer.template === null) throw denied('other-template');
      const template = await this.#deps.templates.get(issuer.template);
      if (!template.enabled) throw denied('template-disabled');
      name = thingName(/(?:^|\n)CN=([^\n]+)/.exec(leaf.subject)?.[1] ?? '');
      if (!wholeMatch(template.namePattern, 'namePattern').test(name)) throw new FleetwardError('FW_ERR_NAME_MISMATCH', `the name ${name} does not fit template ${template.name}`, { template: template.name });
      const spki = subjectPublicKeyInfoOf(leaf);
      const key = checkDeviceKey(spki);
      const fingerprint = keyFingerprint(spki);
      const thing = name;
      await db.transaction().execute(async (trx) => {
        if (await trx.selectFrom('certificate_keys').select('thing_id').where('key_fingerprint', '=', fingerprint).executeTakeFirst()) {
          throw new FleetwardError('FW_ERR_KEY_REUSED', 'this public key already belongs to another thing');
        }
        const thingId = await this.#deps.things.createWithin(trx, { name: thingName(thing), state: 'active', groups: template.groups, attributes: template.attributes, ...(template.thingType !== null && { type: template.thingType }) }, actor);
        await this.#deps.templatePolicies.attachWithin(trx, thing, template.policies, actor);
        await trx.insertInto('certificate_keys').values({ key_fingerprint: fingerprint, thing_id: thingId, created_at: now.toISOString() }).execute();
        await trx
          .insertInto('certificates')
          .values({
            serial,
            ca_id: issuer.ca_id,
            thing_id: thingId,
            kind: 'device',
            template: template.name,
            subject_cn: thing,
            key_fingerprint: fingerprint,
            key_algorithm: key.algorithm,
            key_storage: 'unknown',
            attestation: null,
            issued_via: 'jitr',
            issued_by: `ca:${issuer.ca_id}`,
            not_before: new Date(leaf.validFrom).toISOString(),
            not_after: new Date(leaf.validTo).toISOString(),
            status: 'active',
            revoked_at: null,
            revocation_reason: null,
            must_rotate: 0,
            replaces: null,
            last_used_at: now.toISOString(),
            pem: leaf.toString(),
            created_at: now.toISOString(),
          })
          .execute();
        await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'provisioning.jitr', outcome: 'success', target: `thing:${thing}`, details: { ca: issuer.ca_id, serial, template: template.name } }]);
      });
      return { thing, serial, created: true };
    } catch (error) {
      await this.#deps.audit.record({ ...actorFields(actor), action: 'provisioning.jitr', outcome: 'denied', target: `thing:${name.slice(0, 128)}`, details: { code: codeOf(error) } });
      throw error;
    }
  }
}

function singleCertificate(pem: string, what: string): X509Certificate {
  const blocks = fromPem(pem, ['CERTIFICATE']);
  if (blocks.length !== 1) throw new FleetwardError('FW_ERR_VALIDATION', `the ${what} must be exactly one PEM certificate`, { field: what });
  try {
    return new X509Certificate(blocks[0] as Buffer);
  } catch {
    throw new FleetwardError('FW_ERR_VALIDATION', `the ${what} cannot be parsed`, { field: what });
  }
}
