import type { CaHierarchy } from '../identity/ca-hierarchy.js';
import type { Store } from '../store/store.js';

/**
 * The CAs a device certificate may chain to: Fleetward's issuing CAs (the active one, and retired
 * ones while their certificates are in use) with the root, and registered third-party CAs. A
 * third-party CA must be the one that signs its devices' certificates directly.
 */
export async function deviceTrustAnchors(store: Store, hierarchy: CaHierarchy): Promise<string> {
  const external = await store.db.selectFrom('certificate_authorities').select('cert_pem').where('role', '=', 'external').where('status', '=', 'active').orderBy('id').execute();
  return hierarchy.chainPem + external.map((row) => (row.cert_pem.endsWith('\n') ? row.cert_pem : `${row.cert_pem}\n`)).join('');
}
