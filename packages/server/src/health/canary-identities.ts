import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';
import type { Actor } from '../audit/audit-events.js';
import type { Clock } from '../clock.js';
import { readPrivateFile, writePrivateFile } from '../config/home.js';
import type { CertificateInfo } from '../identity/certificate-repository.js';
import type { Certificates } from '../identity/certificates.js';
import type { KeyRing } from '../identity/key-ring.js';
import { buildCertificateRequest } from '../identity/pki/csr.js';
import type { Things } from '../identity/registry/things.js';

/** Every canary thing's name starts with this; the prefix is reserved for them. */
export const CANARY_PREFIX = 'fw-canary-';
/** The attribute that marks a thing as a canary in the registry (`fleetward things show`). */
export const CANARY_ATTRIBUTE = 'fleetward-canary';
export const CANARY_ACTOR: Actor = { name: 'node:canary' };

/** The canaries' own file in the data folder: the keys in it are sealed with the key-encryption key. */
export const CANARIES_FILE = 'canaries.json';

/** A canary's credentials, opened: what it connects with. */
export interface CanaryCredential {
  readonly thing: string;
  readonly serial: string;
  readonly keyPem: string;
  /** The certificate, then the issuing CA: what a device presents. */
  readonly certPem: string;
  readonly notAfter: Date;
}

export interface CanaryIdentitySet {
  /** The canary that attacks: `fw-canary-<id>`. */
  readonly canary: CanaryCredential;
  /** "Another thing" whose namespace the canary must not reach: `fw-canary-<id>-peer`. */
  readonly peer: CanaryCredential;
  /** A certificate of the canary, revoked at once (reason cessationOfOperation): it must be refused. */
  readonly revoked: CanaryCredential;
}

interface StoredCredential {
  readonly thing: string;
  readonly serial: string;
  readonly key: string;
  readonly certPem: string;
}

interface CanariesFile {
  readonly version: 1;
  readonly id: string;
  readonly canary?: StoredCredential;
  readonly peer?: StoredCredential;
  readonly revoked?: StoredCredential;
}

export interface CanaryIdentityDependencies {
  readonly home: string;
  readonly keyRing: Pick<KeyRing, 'seal' | 'open'>;
  readonly clock: Clock;
  readonly things: Pick<Things, 'create' | 'get'>;
  readonly certificates: Pick<Certificates, 'issue' | 'get' | 'revoke'>;
}

/** The revoked canary certificate lives one day; a new one is made when it expires (expired entries leave the CRL). */
const REVOKED_VALIDITY_DAYS = 1;

/**
 * The built-in canary identities (rule 6). Two things registered like any device, marked with the
 * `fleetward-canary` attribute, each with its own key (made here, kept sealed in `canaries.json`) and a
 * certificate from the issuing CA; the canary's certificate is renewed once two thirds of it have
 * passed, with `replaces` so the old one is retired like any renewal. Nothing grants them more than
 * the default device policy: they prove what an ordinary device can and cannot do.
 */
export class CanaryIdentities {
  readonly #deps: CanaryIdentityDependencies;
  #current: CanaryIdentitySet | null = null;
  #ensuring: Promise<CanaryIdentitySet> | null = null;

  constructor(deps: CanaryIdentityDependencies) {
    this.#deps = deps;
  }

  get file(): string {
    return join(this.#deps.home, CANARIES_FILE);
  }

  /** The identities, made or renewed as needed; concurrent callers share one run. */
  ensure(): Promise<CanaryIdentitySet> {
    this.#ensuring ??= this.#ensure().finally(() => {
      this.#ensuring = null;
    });
    return this.#ensuring;
  }

  async #ensure(): Promise<CanaryIdentitySet> {
    const now = this.#deps.clock.now();
    if (this.#current !== null && fresh(this.#current.canary, now) && fresh(this.#current.peer, now) && this.#current.revoked.notAfter > now) return this.#current;
    const stored = await this.#read();
    const id = stored?.id ?? randomBytes(4).toString('hex');
    const names = { canary: `${CANARY_PREFIX}${id}`, peer: `${CANARY_PREFIX}${id}-peer` };
    for (const name of Object.values(names)) await this.#ensureThing(name);
    const canary = await this.#ensureCertificate(names.canary, stored?.canary);
    const peer = await this.#ensureCertificate(names.peer, stored?.peer);
    const revoked = await this.#ensureRevoked(names.canary, stored?.revoked);
    const file: CanariesFile = { version: 1, id, canary: canary.stored, peer: peer.stored, revoked: revoked.stored };
    if (JSON.stringify(file) !== JSON.stringify(stored)) await writePrivateFile(this.file, `${JSON.stringify(file, null, 2)}\n`);
    this.#current = { canary: canary.credential, peer: peer.credential, revoked: revoked.credential };
    return this.#current;
  }

  async #read(): Promise<CanariesFile | null> {
    const exists = await readFile(this.file).then(
      () => true,
      () => false,
    );
    if (!exists) return null;
    const parsed = JSON.parse((await readPrivateFile(this.file, 'canary key file')).toString('utf8')) as Partial<CanariesFile>;
    if (parsed.version !== 1 || typeof parsed.id !== 'string' || !/^[a-f0-9]{8}$/.test(parsed.id)) throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `${this.file} is not a canary key file`, { path: this.file });
    return parsed as CanariesFile;
  }

  async #ensureThing(name: string): Promise<void> {
    const thing = await this.#deps.things.get(name).catch((error: unknown) => {
      if (error instanceof FleetwardError && error.code === 'FW_ERR_NOT_FOUND') return null;
      throw error;
    });
    if (thing === null) await this.#deps.things.create({ name, attributes: { [CANARY_ATTRIBUTE]: 'true' } }, CANARY_ACTOR);
  }

  async #ensureCertificate(thing: string, stored: StoredCredential | undefined): Promise<{ stored: StoredCredential; credential: CanaryCredential }> {
    const now = this.#deps.clock.now();
    if (stored !== undefined && stored.thing === thing) {
      const credential = this.#open(stored);
      const info = await this.#info(stored.serial);
      if (info?.status === 'active' && fresh(credential, now)) return { stored, credential };
      return this.#issue(thing, info?.status === 'active' ? stored.serial : undefined);
    }
    return this.#issue(thing);
  }

  async #ensureRevoked(thing: string, stored: StoredCredential | undefined): Promise<{ stored: StoredCredential; credential: CanaryCredential }> {
    if (stored !== undefined && stored.thing === thing) {
      const credential = this.#open(stored);
      const info = await this.#info(stored.serial);
      if (info?.status === 'revoked' && credential.notAfter.getTime() > this.#deps.clock.now().getTime() + 3_600_000) return { stored, credential };
    }
    const issued = await this.#issue(thing, undefined, REVOKED_VALIDITY_DAYS);
    await this.#deps.certificates.revoke(issued.stored.serial, 'cessationOfOperation', CANARY_ACTOR);
    return issued;
  }

  async #issue(thing: string, replaces?: string, validityDays?: number): Promise<{ stored: StoredCredential; credential: CanaryCredential }> {
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = buildCertificateRequest(thing, keys);
    const issued = await this.#deps.certificates.issue(
      { subject: thing, kind: 'device', csr, via: 'operator', keyStorage: 'software', ...(replaces !== undefined && { replaces }), ...(validityDays !== undefined && { validityDays }) },
      CANARY_ACTOR,
    );
    const issuing = issued.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? '';
    const keyPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const stored: StoredCredential = { thing, serial: issued.serial, key: this.#deps.keyRing.seal(Buffer.from(keyPem), `canary:${issued.serial}`), certPem: issued.certificatePem + issuing };
    return { stored, credential: this.#open(stored) };
  }

  #open(stored: StoredCredential): CanaryCredential {
    const keyPem = this.#deps.keyRing.open(stored.key, `canary:${stored.serial}`).toString('utf8');
    return { thing: stored.thing, serial: stored.serial, keyPem, certPem: stored.certPem, notAfter: new Date(new X509Certificate(stored.certPem).validTo) };
  }

  async #info(serial: string): Promise<CertificateInfo | null> {
    return this.#deps.certificates.get(serial).catch(() => null);
  }
}

/** A certificate with more than a third of its life left (a day at least). */
function fresh(credential: CanaryCredential, now: Date): boolean {
  const left = credential.notAfter.getTime() - now.getTime();
  const validFrom = Date.parse(new X509Certificate(credential.certPem).validFrom);
  return left > Math.max(86_400_000, (credential.notAfter.getTime() - validFrom) / 3);
}

/** Whether a thing name is a canary's (reserved prefix). */
export function isCanaryThing(name: string): boolean {
  return name.startsWith(CANARY_PREFIX);
}
