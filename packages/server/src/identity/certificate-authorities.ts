import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import { loadCaHierarchy, type CaHierarchy, type SigningCa } from './ca-hierarchy.js';
import type { IssuingCa } from './certificates.js';
import { IssuanceProfile } from './issuance-profile.js';
import type { KeyCustody } from './custody/key-custody.js';
import { notAfterOf } from './keys.js';

/**
 * The node's CAs, opened (keys unsealed) on first use and kept: the CLI opens them only for the
 * commands that sign. `reload()` picks up a rotated issuing CA.
 */
export class CertificateAuthorities {
  readonly #store: Store;
  readonly #custody: KeyCustody;
  readonly #pkiBase: string;
  readonly #clock: Clock;
  #loaded: Promise<{ hierarchy: CaHierarchy; issuing: IssuingCa }> | undefined;

  constructor(store: Store, custody: KeyCustody, pkiBase: string, clock: Clock) {
    this.#store = store;
    this.#custody = custody;
    this.#pkiBase = pkiBase;
    this.#clock = clock;
  }

  async hierarchy(): Promise<CaHierarchy> {
    return (await this.#load()).hierarchy;
  }

  /** The issuing CA new certificates come from, with its profile encoded once. */
  async issuing(): Promise<IssuingCa> {
    return (await this.#load()).issuing;
  }

  async signingCas(): Promise<ReadonlyMap<string, SigningCa>> {
    return (await this.#load()).hierarchy.signingCas;
  }

  reload(): void {
    this.#loaded = undefined;
  }

  /** Reloads when another process or node rotated the issuing CA; returns whether it did. */
  async refreshIfRotated(): Promise<boolean> {
    if (this.#loaded === undefined) return false;
    const active = await this.#store.db.selectFrom('certificate_authorities').select('id').where('role', '=', 'issuing').where('status', '=', 'active').executeTakeFirst();
    if (active?.id === (await this.#loaded).issuing.id) return false;
    this.reload();
    return true;
  }

  #load(): Promise<{ hierarchy: CaHierarchy; issuing: IssuingCa }> {
    this.#loaded ??= loadCaHierarchy(this.#store, this.#custody, this.#clock.now()).then((hierarchy) => ({
      hierarchy,
      issuing: {
        id: hierarchy.issuing.id,
        profile: new IssuanceProfile(hierarchy.issuing.id, hierarchy.issuing.certificate, { base: this.#pkiBase }),
        signer: hierarchy.issuingSigner,
        chainPem: hierarchy.chainPem,
        notAfter: notAfterOf(hierarchy.issuing.certificate),
      },
    }));
    // A failed load (database down) is retried on the next use rather than remembered.
    this.#loaded.catch(() => {
      this.#loaded = undefined;
    });
    return this.#loaded;
  }
}
