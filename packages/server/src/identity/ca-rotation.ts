import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { Config } from '../config/settings.js';
import { lockForTransaction } from '../store/locks.js';
import type { CaDependencies } from './ca-hierarchy.js';
import { allCas, insertCa } from './ca-repository.js';
import { createIssuingCa, newCaId, type CaCertificate } from './certificate-authority.js';
import type { IdentityEvents } from './events.js';
import type { IssuingRequest } from './offline-root.js';

/** Changing the issuing CA: online (`rotate`), or in two steps under an offline root (`request`, then `import`). */
export interface IssuingCaOperations {
  rotate(actor: Actor, options: { readonly requestRotation: boolean }): Promise<IssuingRotation>;
  request(actor: Actor): Promise<IssuingRequest>;
  import(certificatePem: string, actor: Actor, options: { readonly requestRotation: boolean }): Promise<IssuingRotation>;
}

export interface IssuingRotation {
  readonly previous: string;
  readonly current: string;
  /** Device certificates of the previous CA now marked "must rotate". */
  readonly rotationRequested: number;
}

/**
 * Introduces a new issuing CA, signed by the root. The previous one is retired: it signs no new
 * certificates, but keeps signing CRLs and OCSP answers and stays in the trusted chain while its
 * certificates are in use, so devices move over as they renew (sooner with `requestRotation`).
 */
export async function rotateIssuingCa(deps: CaDependencies & { readonly events: IdentityEvents }, config: Config['ca'], actor: Actor, options: { readonly requestRotation: boolean }): Promise<IssuingRotation> {
  const cas = await allCas(deps.store.db);
  const root = cas.find((c) => c.ca.role === 'root' && c.ca.status === 'active');
  const previous = cas.find((c) => c.ca.role === 'issuing' && c.ca.status === 'active');
  if (!root || !previous) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', 'no active CA hierarchy; run `fleetward init`');
  if (root.sealedKey === null) {
    throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', 'the root key is kept offline: use `fleetward ca issuing-request`, sign it on the offline machine with `fleetward ca sign-issuing`, then `fleetward ca import-issuing`', { ca: root.ca.id });
  }
  const rootSigner = await deps.custody.signer(root.ca.id, root.sealedKey);
  const now = deps.clock.now();
  const id = newCaId();
  const key = await deps.custody.generate(id, config.keyAlgorithm);
  const next = await createIssuingCa({ id, organization: config.name, algorithm: config.keyAlgorithm, validityDays: config.issuingValidityDays, now, subjectPublicKeyInfo: key.subjectPublicKeyInfo, root: root.ca.certificate, rootSigner });
  return activateIssuingCa(deps, { next, reference: key.reference, previous: previous.ca.id, now }, actor, options);
}

/** Makes `next` the active issuing CA and retires the previous one, in one transaction. */
export async function activateIssuingCa(
  deps: CaDependencies & { readonly events: IdentityEvents },
  change: { readonly next: CaCertificate; readonly reference: string; readonly previous: string; readonly now: Date },
  actor: Actor,
  options: { readonly requestRotation: boolean },
): Promise<IssuingRotation> {
  const { next, previous, now } = change;
  const asked = await deps.store.db.transaction().execute(async (trx) => {
    await lockForTransaction(trx, deps.store.dialect, 'fleetward:ca-bootstrap');
    const still = await trx.selectFrom('certificate_authorities').select('status').where('id', '=', previous).executeTakeFirst();
    if (still?.status !== 'active') throw new FleetwardError('FW_ERR_CONFLICT', 'the issuing CA changed meanwhile; look again with `fleetward ca show`');
    await trx.updateTable('certificate_authorities').set({ status: 'retired' }).where('id', '=', previous).execute();
    await trx.deleteFrom('pending_issuing_cas').where('id', '=', next.id).execute();
    await insertCa(trx, next, change.reference, now);
    let certificates: { serial: string; thing: string | null }[] = [];
    if (options.requestRotation) {
      certificates = await trx
        .selectFrom('certificates')
        .leftJoin('things', 'things.id', 'certificates.thing_id')
        .select(['certificates.serial as serial', 'things.name as thing'])
        .where('certificates.ca_id', '=', previous)
        .where('certificates.kind', '=', 'device')
        .where('certificates.status', '=', 'active')
        .execute();
      if (certificates.length > 0) await trx.updateTable('certificates').set({ must_rotate: 1 }).where('ca_id', '=', previous).where('kind', '=', 'device').where('status', '=', 'active').execute();
    }
    await deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'ca.rotate', outcome: 'success', target: `ca:${next.id}`, details: { previous, current: next.id, rotationRequested: certificates.length } }]);
    return certificates;
  });
  for (const { serial, thing } of asked) if (thing !== null) deps.events.emit('rotationRequested', { thing, serial });
  return { previous, current: next.id, rotationRequested: asked.length };
}
