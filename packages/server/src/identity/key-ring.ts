import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';

const SEAL_VERSION = 'fwseal1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

interface KekEntry {
  readonly id: string;
  readonly key: Buffer;
  readonly createdAt: string;
}

/** What a sealed secret is for; bound into the ciphertext so one sealed key cannot stand in for another. */
export type SealLabel = `ca:${string}` | 'tls:server' | `tuf:${string}` | `audit:${string}` | `canary:${string}` | `notify:${string}` | `test:${string}`;

/** What a key derived from the ring is for (the HKDF info): one purpose, one key. */
export type DerivedKeyLabel = `tls:session-tickets:${string}`;

/**
 * The key-encryption keys (KEKs) of a node. Every private key at rest is sealed with the active
 * KEK using AES-256-GCM; the sealed form carries the key id, so after a rotation older secrets
 * still open until they are re-sealed. Format: `fwseal1.<kid>.<iv>.<ciphertext+tag>` (base64url),
 * authenticated together with the label (AAD).
 */
export class KeyRing {
  readonly #keys: ReadonlyMap<string, KekEntry>;
  readonly activeId: string;

  private constructor(keys: readonly KekEntry[], activeId: string) {
    this.#keys = new Map(keys.map((k) => [k.id, k]));
    this.activeId = activeId;
  }

  static generate(now: Date): KeyRing {
    const entry = newEntry(now);
    return new KeyRing([entry], entry.id);
  }

  /** A ring whose active key is new; the previous keys stay only to open what they sealed. */
  withNewActiveKey(now: Date): KeyRing {
    const entry = newEntry(now);
    return new KeyRing([...this.#keys.values(), entry], entry.id);
  }

  /** A ring holding only the active key (after everything was re-sealed with it). */
  withoutRetiredKeys(): KeyRing {
    return new KeyRing([this.#entry(this.activeId)], this.activeId);
  }

  get keyIds(): readonly string[] {
    return [...this.#keys.keys()];
  }

  seal(plaintext: Uint8Array, label: SealLabel): string {
    const entry = this.#entry(this.activeId);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', entry.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(entry.id, label));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return [SEAL_VERSION, entry.id, iv.toString('base64url'), body.toString('base64url')].join('.');
  }

  open(sealed: string, label: SealLabel): Buffer {
    const parts = sealed.trim().split('.');
    if (parts.length !== 4 || parts[0] !== SEAL_VERSION) throw unreadable(label, 'not a sealed secret');
    const [, kid, ivText, bodyText] = parts as [string, string, string, string];
    const entry = this.#keys.get(kid);
    if (!entry) throw unreadable(label, `sealed with key ${kid}, which is not in the key ring`);
    const iv = Buffer.from(ivText, 'base64url');
    const body = Buffer.from(bodyText, 'base64url');
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw unreadable(label, 'truncated');
    try {
      const decipher = createDecipheriv('aes-256-gcm', entry.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(kid, label));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw unreadable(label, 'authentication failed (modified, or sealed for another purpose)');
    }
  }

  /**
   * A key for one purpose, derived from the active KEK (HKDF-SHA-256, the label as info): every
   * node sharing the ring derives the same one, and a KEK rotation changes it. The KEK never leaves the ring.
   */
  derive(label: DerivedKeyLabel, bytes: number): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#entry(this.activeId).key, 'fleetward key ring', label, bytes));
  }

  /** Re-seals a secret with the active key, keeping its label. */
  reseal(sealed: string, label: SealLabel): string {
    return this.seal(this.open(sealed, label), label);
  }

  toJSON(): KeyRingFile {
    return {
      version: 1,
      active: this.activeId,
      keys: [...this.#keys.values()].map((k) => ({ id: k.id, key: k.key.toString('base64'), createdAt: k.createdAt })),
    };
  }

  static fromJSON(document: unknown, source: string): KeyRing {
    const invalid = (why: string) => new FleetwardError('FW_ERR_KEY_UNREADABLE', `key ring ${source} is corrupt: ${why}`, { path: source });
    if (!isKeyRingFile(document)) throw invalid('unexpected structure');
    const entries = document.keys.map((k) => ({ id: k.id, key: Buffer.from(k.key, 'base64'), createdAt: k.createdAt }));
    if (entries.some((e) => e.key.length !== KEY_BYTES || !/^[a-f0-9]{16}$/.test(e.id))) throw invalid('a key has the wrong length or id');
    if (!entries.some((e) => e.id === document.active)) throw invalid('the active key is missing');
    return new KeyRing(entries, document.active);
  }

  #entry(id: string): KekEntry {
    const entry = this.#keys.get(id);
    if (!entry) throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `key ${id} is not in the key ring`);
    return entry;
  }
}

export interface KeyRingFile {
  readonly version: 1;
  readonly active: string;
  readonly keys: readonly { readonly id: string; readonly key: string; readonly createdAt: string }[];
}

function isKeyRingFile(value: unknown): value is KeyRingFile {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    v.version === 1 &&
    typeof v.active === 'string' &&
    Array.isArray(v.keys) &&
    v.keys.length > 0 &&
    v.keys.every((k: unknown) => {
      const e = k as Record<string, unknown> | null;
      return e !== null && typeof e === 'object' && typeof e.id === 'string' && typeof e.key === 'string' && typeof e.createdAt === 'string';
    })
  );
}

function newEntry(now: Date): KekEntry {
  return { id: randomBytes(8).toString('hex'), key: randomBytes(KEY_BYTES), createdAt: now.toISOString() };
}

function aad(kid: string, label: SealLabel): Buffer {
  return Buffer.from(`${SEAL_VERSION}|${kid}|${label}`, 'utf8');
}

function unreadable(label: SealLabel, why: string): FleetwardError {
  return new FleetwardError('FW_ERR_KEY_UNREADABLE', `sealed secret ${label} cannot be opened: ${why}`, { label });
}
