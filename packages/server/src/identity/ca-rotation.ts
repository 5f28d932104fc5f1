import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { Config } from '../config/settings.js';
import { lockForTransaction } from '../store/locks.js';
import type { CaDependencies } from './ca-hierarchy.js';
import { allCas, insertCa } from './ca-repository.js';
import { createIssuingCa } from './certificate-authority.js';
import type { IdentityEvents } from './events.js';
import { exportPkcs8, importPrivateKey } from './keys.js';
import { softwareSigner } from './pki/signer.js';

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
    throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', 'the root key is kept offline: create the new issuing CA with `fleetward ca sign-issuing` on the offline machine, then import it', { ca: root.ca.id });
  }
  const rootSigner = softwareSigner(importPrivateKey(deps.keyRing.open(root.sealedKey, `ca:${root.ca.id}`)));
  const now = deps.clock.now();
  const next = await createIssuingCa({ organization: config.name, algorithm: config.keyAlgorithm, validityDays: config.issuingValidityDays, now, root: root.ca, rootSigner });
  const sealed = deps.keyRing.seal(exportPkcs8(next.keys.privateKey), `ca:${next.ca.id}`);
  const asked = await deps.store.db.transaction().execute(async (trx) => {
    await lockForTransaction(trx, deps.store.dialect, 'fleetward:ca-bootstrap');
    const still = await trx.selectFrom('certificate_authorities').select('status').where('id', '=', previous.ca.id).executeTakeFirst();
    if (still?.status !== 'active') throw new FleetwardError('FW_ERR_CONFLICT', 'the issuing CA changed meanwhile; look again with `fleetward ca show`');
    await trx.updateTable('certificate_authorities').set({ status: 'retired' }).where('id', '=', previous.ca.id).execute();
    await insertCa(trx, next.ca, sealed, now);
    let certificates: { serial: string; thing: string | null }[] = [];
    if (options.requestRotation) {
      certificates = await trx
        .selectFrom('certificates')
        .leftJoin('things', 'things.id', 'certificates.thing_id')
        .select(['certificates.serial as serial', 'things.name as thing'])
        .where('certificates.ca_id', '=', previous.ca.id)
        .where('certificates.kind', '=', 'device')
        .where('certificates.status', '=', 'active')
        .execute();
      if (certificates.length > 0) await trx.updateTable('certificates').set({ must_rotate: 1 }).where('ca_id', '=', previous.ca.id).where('kind', '=', 'device').where('status', '=', 'active').execute();
    }
    await deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'ca.rotate', outcome: 'success', target: `ca:${next.ca.id}`, details: { previous: previous.ca.id, current: next.ca.id, rotationRequested: certificates.length } }]);
    return certificates;
  });
  for (const { serial, thing } of asked) if (thing !== null) deps.events.emit('rotationRequested', { thing, serial });
  return { previous: previous.ca.id, current: next.ca.id, rotationRequested: asked.length };
}
