import { generateKeyPairSync } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/settings.js';
import { lockForTransaction } from '../store/locks.js';
import type { Store } from '../store/store.js';
import { activeCas, allCas, insertCa, type StoredCa } from './ca-repository.js';
import { chainPem, createIssuingCa, createRootCa, newCaId, type CaCertificate } from './certificate-authority.js';
import type { KeyCustody } from './custody/key-custody.js';
import { spkiOf } from './keys.js';
import { softwareSigner, type Signer } from './pki/signer.js';
import { ROOT_PASSPHRASE_MIN_LENGTH } from './offline-root.js';

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
  readonly custody: KeyCustody;
  readonly audit: AuditLog;
  readonly clock: Clock;
}

export interface HierarchyOptions {
  /**
   * Keep the root key offline: it is generated here, handed to `saveKey` encrypted with the
   * passphrase (before anything is committed, so a failure cannot lose it), and never stored.
   * New issuing CAs are then signed on the offline machine.
   */
  readonly offlineRoot?: { readonly passphrase: string; readonly saveKey: (encryptedPem: string) => Promise<void> };
}

/**
 * Creates the root and issuing CAs unless they exist. Keys are made before any lock is taken; the
 * insert runs under a cluster-wide lock and re-checks, so nodes starting together on one
 * PostgreSQL create one hierarchy, not two.
 */
export async function ensureCaHierarchy(deps: CaDependencies, config: Config['ca'], options: HierarchyOptions = {}): Promise<{ created: boolean }> {
  if (pickActive(await activeCas(deps.store.db)) !== null) {
    if (options.offlineRoot) throw new FleetwardError('FW_ERR_CONFLICT', 'a CA hierarchy exists already; an offline root can only be chosen when the CAs are first created');
    return { created: false };
  }
  if (options.offlineRoot && options.offlineRoot.passphrase.length < ROOT_PASSPHRASE_MIN_LENGTH) {
    throw new FleetwardError('FW_ERR_VALIDATION', `the offline root key passphrase must have at least ${ROOT_PASSPHRASE_MIN_LENGTH} characters: it is the key's only protection`);
  }
  const now = deps.clock.now();
  const common = { organization: config.name, algorithm: config.keyAlgorithm, now };
  const rootId = newCaId();
  const issuingId = newCaId();
  let rootKey: { subjectPublicKeyInfo: Buffer; signer: Signer; reference: string | null };
  if (options.offlineRoot) {
    const keys = generateKeyPairSync('ec', { namedCurve: config.keyAlgorithm === 'ECDSA-P384' ? 'P-384' : 'P-256' });
    rootKey = { subjectPublicKeyInfo: spkiOf(keys.publicKey), signer: softwareSigner(keys.privateKey), reference: null };
    await options.offlineRoot.saveKey(keys.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: options.offlineRoot.passphrase }) as string);
  } else {
    rootKey = await deps.custody.generate(rootId, config.keyAlgorithm);
  }
  const root = await createRootCa({ ...common, id: rootId, validityDays: config.rootValidityDays, key: rootKey });
  const issuingKey = await deps.custody.generate(issuingId, config.keyAlgorithm);
  const issuing = await createIssuingCa({ ...common, id: issuingId, validityDays: config.issuingValidityDays, subjectPublicKeyInfo: issuingKey.subjectPublicKeyInfo, root: root.certificate, rootSigner: rootKey.signer });
  const created = await deps.store.db.transaction().execute(async (trx) => {
    await lockForTransaction(trx, deps.store.dialect, 'fleetward:ca-bootstrap');
    if (pickActive(await activeCas(trx)) !== null) return false;
    await insertCa(trx, root, rootKey.reference, now);
    await insertCa(trx, issuing, issuingKey.reference, now);
    await deps.audit.recordWithin(
      trx,
      [root, issuing].map((ca) => ({
        actor: 'node',
        action: 'ca.create' as const,
        outcome: 'success' as const,
        target: `ca:${ca.id}`,
        details: {
          role: ca.role,
          subject: ca.certificate.subject.split('\n').join(', '),
          serial: ca.certificate.serialNumber.toLowerCase(),
          notAfter: new Date(ca.certificate.validTo).toISOString(),
          keyAlgorithm: ca.keyAlgorithm,
          custody: ca === root && options.offlineRoot ? 'offline' : deps.custody.mode,
        },
      })),
    );
    return true;
  });
  if (!created && options.offlineRoot) throw new FleetwardError('FW_ERR_CONFLICT', 'another node created the CA hierarchy meanwhile; the root key just saved belongs to no CA and can be deleted');
  return { created };
}

/** Loads the active hierarchy and opens the issuing CAs' keys; refuses to run without one. */
export async function loadCaHierarchy(store: Store, custody: KeyCustody, now: Date): Promise<CaHierarchy> {
  const cas = await allCas(store.db);
  const active = pickActive(cas.filter((c) => c.ca.status === 'active'));
  if (active === null) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', 'no active CA hierarchy in the database; run `fleetward init`');
  const { root, issuing } = active;
  if (issuing.sealedKey === null) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', `the key of issuing CA ${issuing.ca.id} is not online`);
  const signingCas = new Map<string, SigningCa>();
  for (const stored of cas) {
    if (stored.ca.role !== 'issuing' || stored.sealedKey === null) continue;
    signingCas.set(stored.ca.id, { ca: stored.ca, signer: await custody.signer(stored.ca.id, stored.sealedKey) });
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
