import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/settings.js';
import { lockForTransaction } from '../store/locks.js';
import type { Store } from '../store/store.js';
import { activeCas, allCas, insertCa, type StoredCa } from './ca-repository.js';
import { chainPem, createIssuingCa, createRootCa, type CaCertificate } from './certificate-authority.js';
import type { KeyRing } from './key-ring.js';
import { exportPkcs8, importPrivateKey, notAfterOf } from './keys.js';
import { softwareSigner, type Signer } from './pki/signer.js';

/** An issuing CA whose key is online: it signs certificates, CRLs and OCSP responses. */
export interface SigningCa {
  readonly ca: CaCertificate;
  readonly signer: Signer;
}

/** The CAs a running node uses: the root clients trust and the online issuing CA that signs. */
export interface CaHierarchy {
  readonly root: CaCertificate;
  readonly issuing: CaCertificate;
  /** Signs certificates, CRLs and OCSP responses as the issuing CA. */
  readonly issuingSigner: Signer;
  /**
   * Every issuing CA with an online key, the active one included: a retired issuing CA still signs
   * CRLs and OCSP answers for the certificates it issued until they expire.
   */
  readonly signingCas: ReadonlyMap<string, SigningCa>;
  /** PEM of the issuing CAs (active first, then retired ones still in use), then the root: what `$FLEETWARD_HOME/ca.pem` holds. */
  readonly chainPem: string;
}

export interface CaDependencies {
  readonly store: Store;
  readonly keyRing: KeyRing;
  readonly audit: AuditLog;
  readonly clock: Clock;
}

/**
 * Creates the root and issuing CAs unless they exist. The keys are made before any lock is
 * taken; the insert runs under a cluster-wide lock and re-checks, so nodes starting together on
 * one PostgreSQL create one hierarchy, not two.
 */
export async function ensureCaHierarchy(deps: CaDependencies, config: Config['ca']): Promise<{ created: boolean }> {
  if (pickActive(await activeCas(deps.store.db)) !== null) return { created: false };
  const now = deps.clock.now();
  const parameters = { organization: config.name, algorithm: config.keyAlgorithm, now };
  const root = await createRootCa({ ...parameters, validityDays: config.rootValidityDays });
  const issuing = await createIssuingCa({ ...parameters, validityDays: config.issuingValidityDays, root: root.ca, rootSigner: softwareSigner(root.keys.privateKey) });
  const sealed = [root, issuing].map((c) => ({ ca: c.ca, key: deps.keyRing.seal(exportPkcs8(c.keys.privateKey), `ca:${c.ca.id}`) }));
  return deps.store.db.transaction().execute(async (trx) => {
    await lockForTransaction(trx, deps.store.dialect, 'fleetward:ca-bootstrap');
    if (pickActive(await activeCas(trx)) !== null) return { created: false };
    for (const { ca, key } of sealed) await insertCa(trx, ca, key, now);
    await deps.audit.recordWithin(
      trx,
      sealed.map(({ ca }) => ({
        actor: 'node',
        action: 'ca.create' as const,
        outcome: 'success' as const,
        target: `ca:${ca.id}`,
        details: { role: ca.role, subject: ca.certificate.subject.split('\n').join(', '), serial: ca.certificate.serialNumber.toLowerCase(), notAfter: notAfterOf(ca.certificate).toISOString(), keyAlgorithm: ca.keyAlgorithm },
      })),
    );
    return { created: true };
  });
}

/** Loads the active hierarchy and opens the issuing CAs' keys; refuses to run without one. */
export async function loadCaHierarchy(store: Store, keyRing: KeyRing, now: Date): Promise<CaHierarchy> {
  const cas = await allCas(store.db);
  const active = pickActive(cas.filter((c) => c.ca.status === 'active'));
  if (active === null) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', 'no active CA hierarchy in the database; run `fleetward init`');
  const { root, issuing } = active;
  if (issuing.sealedKey === null) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', `the key of issuing CA ${issuing.ca.id} is not online`);
  const signingCas = new Map<string, SigningCa>();
  for (const stored of cas) {
    if (stored.ca.role !== 'issuing' || stored.sealedKey === null) continue;
    signingCas.set(stored.ca.id, { ca: stored.ca, signer: softwareSigner(importPrivateKey(keyRing.open(stored.sealedKey, `ca:${stored.ca.id}`))) });
  }
  const signing = signingCas.get(issuing.ca.id) as SigningCa;
  // Retired issuing CAs stay trusted while devices still use their certificates (the transition window).
  const inUse = await store.db.selectFrom('certificates').select('ca_id').distinct().where('status', '=', 'active').where('not_after', '>', now.toISOString()).execute();
  const retired = cas.filter((c) => c.ca.role === 'issuing' && c.ca.status === 'retired' && inUse.some((u) => u.ca_id === c.ca.id)).map((c) => c.ca);
  return { root: root.ca, issuing: issuing.ca, issuingSigner: signing.signer, signingCas, chainPem: chainPem([issuing.ca, ...retired], root.ca) };
}

function pickActive(cas: readonly StoredCa[]): { root: StoredCa; issuing: StoredCa } | null {
  const root = cas.filter((c) => c.ca.role === 'root').at(-1);
  const issuing = cas.filter((c) => c.ca.role === 'issuing').at(-1);
  return root && issuing ? { root, issuing } : null;
}
