import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { FleetwardError } from './errors.js';

/** The one suite: X25519 key agreement, HKDF-SHA-256, AES-256-GCM (the shape of HPKE base mode, RFC 9180 §5.1). */
export const SEALED_ALG = 'X25519-HKDF-SHA256-A256GCM';
/** The member that marks a sealed value inside a JSON payload: `{ "$sealed": <envelope> }`, alone in its object. */
export const SEALED_KEY = '$sealed';
/** Largest plaintext one envelope carries, in bytes. */
export const MAX_SEALED_PLAINTEXT_BYTES = 65_536;

/**
 * A value sealed to a recipient's X25519 key, as JSON. `kid` names the recipient key; `epk` is the
 * sender's ephemeral public key, `iv` the 96-bit GCM nonce, `ct` the ciphertext followed by the
 * 128-bit tag (all base64url, unpadded, canonical).
 */
export interface SealedEnvelope {
  readonly v: 1;
  readonly alg: typeof SEALED_ALG;
  readonly kid: string;
  readonly epk: string;
  readonly iv: string;
  readonly ct: string;
}

/** A sealed JSON value as it travels inside a payload. */
export interface SealedValue {
  readonly [SEALED_KEY]: SealedEnvelope;
}

/** Whom to seal to: a key id and the X25519 public key (a KeyObject, or its raw 32 bytes). */
export interface SealingRecipient {
  readonly keyId: string;
  readonly publicKey: KeyObject | Uint8Array;
}

/** The backend's sealing key as it is published to devices (and shown to operators). */
export interface SealingKey {
  readonly alg: typeof SEALED_ALG;
  readonly keyId: string;
  /** The raw X25519 public key, base64url. */
  readonly publicKey: string;
}

const DOMAIN = 'fleetward/sealed/v1';
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const POINT_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const ENVELOPE_FIELDS = ['v', 'alg', 'kid', 'epk', 'iv', 'ct'] as const;

/** The context a device's sealed values are bound to: an envelope opens only when its own thing sends it. */
export function thingSealingInfo(thing: string): string {
  return `thing:${thing}`;
}

/**
 * Seals bytes so that only the holder of the recipient's private key can open them: a fresh
 * ephemeral X25519 key per envelope, its shared secret with the recipient through HKDF-SHA-256
 * (salt: ephemeral ‖ recipient public key; info: suite, key id and `info`) to an AES-256-GCM key,
 * a random 96-bit nonce, and the version, suite, key id and ephemeral key as associated data.
 * The sender keeps nothing that could open it again.
 */
export function sealToRecipient(plaintext: Uint8Array, recipient: SealingRecipient, info = ''): SealedEnvelope {
  if (!KEY_ID.test(recipient.keyId)) throw new FleetwardError('FW_ERR_VALIDATION', `a sealing key id must match ${KEY_ID.source}`, { field: 'keyId' });
  if (plaintext.byteLength > MAX_SEALED_PLAINTEXT_BYTES) throw new FleetwardError('FW_ERR_PAYLOAD_TOO_LARGE', `a sealed value holds at most ${MAX_SEALED_PLAINTEXT_BYTES} bytes`, { limit: MAX_SEALED_PLAINTEXT_BYTES });
  const recipientKey = recipientKeyOf(recipient.publicKey);
  const ephemeral = generateKeyPairSync('x25519');
  const epk = rawPublicOf(ephemeral.publicKey);
  const shared = agree(ephemeral.privateKey, recipientKey);
  if (shared === null) throw new FleetwardError('FW_ERR_KEY_REJECTED', 'the sealing key is a low-order X25519 point: nothing sealed to it would be secret', {});
  const epkText = epk.toString('base64url');
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', contentKey(shared, epk, rawPublicOf(recipientKey), recipient.keyId, info), iv);
  cipher.setAAD(associatedData(recipient.keyId, epkText));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { v: 1, alg: SEALED_ALG, kid: recipient.keyId, epk: epkText, iv: iv.toString('base64url'), ct: ct.toString('base64url') };
}

/** Seals a JSON value (what devices put in a payload; the backend opens and replaces it on ingest). */
export function sealJson(value: unknown, recipient: SealingRecipient, info = ''): SealedValue {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // A BigInt or a cycle.
  }
  if (text === undefined) throw new FleetwardError('FW_ERR_VALIDATION', 'only a JSON value can be sealed', {});
  return { [SEALED_KEY]: sealToRecipient(Buffer.from(text, 'utf8'), recipient, info) };
}

/**
 * Opens an envelope with the private key `lookup` finds for its key id. Whatever fails (unknown
 * key, another key, a changed byte, a relabelled key id, another `info`, a low-order ephemeral
 * key) is the one error FW_ERR_SEALED_INVALID: the caller learns nothing about which check failed.
 */
export function openSealed(envelope: SealedEnvelope, lookup: (keyId: string) => KeyObject | undefined, info = ''): Buffer {
  const checked = parseSealedEnvelope(envelope);
  const privateKey = lookup(checked.kid);
  if (privateKey === undefined) throw sealedInvalid(`no sealing key ${checked.kid} is known here`, { keyId: checked.kid });
  try {
    if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'x25519') throw new Error('not an X25519 private key');
    const epk = Buffer.from(checked.epk, 'base64url');
    const shared = agree(privateKey, x25519Public(epk));
    if (shared === null) throw new Error('low-order ephemeral key');
    const body = Buffer.from(checked.ct, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', contentKey(shared, epk, rawPublicOf(privateKey), checked.kid, info), Buffer.from(checked.iv, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(checked.kid, checked.epk));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw sealedInvalid('the sealed value cannot be opened (modified, sealed to another key, or for another sender)', { keyId: checked.kid });
  }
}

/** Parses an envelope from untrusted JSON: exactly its six fields, bounded lengths, canonical base64url. */
export function parseSealedEnvelope(value: unknown): SealedEnvelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('', 'must be a JSON object');
  const record = value as Record<string, unknown>;
  const unknown = Object.keys(record).find((k) => !(ENVELOPE_FIELDS as readonly string[]).includes(k));
  if (unknown !== undefined) throw invalid(unknown, 'is not a known field');
  if (record.v !== 1) throw invalid('v', 'must be 1');
  if (record.alg !== SEALED_ALG) throw invalid('alg', `must be ${SEALED_ALG}`);
  const kid = record.kid;
  if (typeof kid !== 'string' || !KEY_ID.test(kid)) throw invalid('kid', `must match ${KEY_ID.source}`);
  return {
    v: 1,
    alg: SEALED_ALG,
    kid,
    epk: base64url(record.epk, 'epk', POINT_BYTES, POINT_BYTES),
    iv: base64url(record.iv, 'iv', IV_BYTES, IV_BYTES),
    ct: base64url(record.ct, 'ct', TAG_BYTES, MAX_SEALED_PLAINTEXT_BYTES + TAG_BYTES),
  };
}

/** Parses a published sealing key (`{ alg, keyId, publicKey }`) into a recipient to seal to. */
export function parseSealingKey(value: unknown): SealingRecipient {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('', 'must be a JSON object', 'sealing key');
  const record = value as Record<string, unknown>;
  const unknown = Object.keys(record).find((k) => k !== 'alg' && k !== 'keyId' && k !== 'publicKey');
  if (unknown !== undefined) throw invalid(unknown, 'is not a known field', 'sealing key');
  if (record.alg !== SEALED_ALG) throw invalid('alg', `must be ${SEALED_ALG}`, 'sealing key');
  if (typeof record.keyId !== 'string' || !KEY_ID.test(record.keyId)) throw invalid('keyId', `must match ${KEY_ID.source}`, 'sealing key');
  const publicKey = Buffer.from(base64url(record.publicKey, 'publicKey', POINT_BYTES, POINT_BYTES, 'sealing key'), 'base64url');
  return { keyId: record.keyId, publicKey };
}

/** The raw public key of an X25519 key (private or public), base64url: what `SealingKey.publicKey` holds. */
export function sealingPublicKeyOf(key: KeyObject): string {
  return rawPublicOf(key).toString('base64url');
}

function recipientKeyOf(publicKey: KeyObject | Uint8Array): KeyObject {
  if (publicKey instanceof Uint8Array) {
    if (publicKey.byteLength !== POINT_BYTES) throw new FleetwardError('FW_ERR_KEY_REJECTED', `a raw X25519 public key is ${POINT_BYTES} bytes`, {});
    return x25519Public(Buffer.from(publicKey));
  }
  if (publicKey.type !== 'public' || publicKey.asymmetricKeyType !== 'x25519') throw new FleetwardError('FW_ERR_KEY_REJECTED', 'the sealing key must be an X25519 public key', {});
  return publicKey;
}

function x25519Public(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
}

// Deriving a public key from a private one costs a scalar multiplication: once per key object.
const rawPublics = new WeakMap<KeyObject, Buffer>();

function rawPublicOf(key: KeyObject): Buffer {
  let raw = rawPublics.get(key);
  if (raw === undefined) {
    const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
    raw = Buffer.from(jwk.x as string, 'base64url');
    rawPublics.set(key, raw);
  }
  return raw;
}

/**
 * The X25519 shared secret, or null when the peer key is of low order. RFC 7748 §6.1: an all-zero
 * output must be refused (OpenSSL already fails the derivation; the check keeps us closed if it did not).
 */
function agree(privateKey: KeyObject, publicKey: KeyObject): Buffer | null {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey });
  } catch {
    return null;
  }
  return shared.every((byte) => byte === 0) ? null : shared;
}

function contentKey(shared: Buffer, epk: Buffer, recipient: Buffer, keyId: string, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, recipient]), `${DOMAIN}|${SEALED_ALG}|${keyId}|${info}`, 32));
}

function associatedData(keyId: string, epk: string): Buffer {
  return Buffer.from(`${DOMAIN}|${SEALED_ALG}|${keyId}|${epk}`);
}

/** A canonical base64url string (no padding, unused bits zero) of `min`–`max` bytes: one encoding per value, so no byte can change unnoticed. */
function base64url(value: unknown, field: string, min: number, max: number, what = 'sealed envelope'): string {
  if (typeof value !== 'string' || value.length > Math.ceil((max * 4) / 3) || !BASE64URL.test(value)) throw invalid(field, 'must be base64url', what);
  const bytes = Buffer.from(value, 'base64url');
  if (bytes.length < min || bytes.length > max || bytes.toString('base64url') !== value) throw invalid(field, min === max ? `must encode ${min} bytes` : `must encode ${min} to ${max} bytes`, what);
  return value;
}

function invalid(field: string, why: string, what = 'sealed envelope'): FleetwardError {
  return new FleetwardError('FW_ERR_VALIDATION', field === '' ? `the ${what} ${why}` : `${what}: ${field} ${why}`, field === '' ? {} : { field });
}

function sealedInvalid(message: string, details: Readonly<Record<string, unknown>>): FleetwardError {
  return new FleetwardError('FW_ERR_SEALED_INVALID', message, details);
}
