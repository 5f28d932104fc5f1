import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/settings.js';
import { lockForTransaction } from '../store/locks.js';
import type { Store } from '../store/store.js';
import { activeCas, insertCa, type StoredCa } from './ca-repository.js';
import { chainPem, createIssuingCa, createRootCa, type CaCertificate } from './certificate-authority.js';
import type { KeyRing } from './key-ring.js';
import { exportPkcs8, importSigningKey, notAfterOf, type CryptoKey } from './keys.js';

/** The CAs a running node uses: the root clients trust and the online issuing CA that signs. */
export interface CaHierarchy {
  readonly root: CaCertificate;
  readonly issuing: CaCertificate;
  readonly issuingKey: CryptoKey;
  /** PEM of issuing CA then root: what `$FLEETWARD_HOME/ca.pem` holds. */
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
  const issuing = await createIssuingCa({ ...parameters, validityDays: config.issuingValidityDays, root: root.ca, rootKey: root.privateKey });
  const sealed = await Promise.all([root, issuing].map(async (c) => ({ ca: c.ca, key: deps.keyRing.seal(await exportPkcs8(c.privateKey), `ca:${c.ca.id}`) })));
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

/** Loads the active hierarchy and opens the issuing CA's key; refuses to run without one. */
export async function loadCaHierarchy(store: Store, keyRing: KeyRing): Promise<CaHierarchy> {
  const active = pickActive(await activeCas(store.db));
  if (active === null) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', 'no active CA hierarchy in the database; run `fleetward init`');
  const { root, issuing } = active;
  if (issuing.sealedKey === null) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', `the key of issuing CA ${issuing.ca.id} is not online`);
  const issuingKey = await importSigningKey(keyRing.open(issuing.sealedKey, `ca:${issuing.ca.id}`), issuing.ca.keyAlgorithm);
  return { root: root.ca, issuing: issuing.ca, issuingKey, chainPem: chainPem(issuing.ca, root.ca) };
}

function pickActive(cas: readonly StoredCa[]): { root: StoredCa; issuing: StoredCa } | null {
  const root = cas.filter((c) => c.ca.role === 'root').at(-1);
  const issuing = cas.filter((c) => c.ca.role === 'issuing').at(-1);
  return root && issuing ? { root, issuing } : null;
}
