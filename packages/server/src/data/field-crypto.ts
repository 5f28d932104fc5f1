import { createCipheriv, createDecipheriv, createHash, createHmac, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';

/** The data keys, opened from their sealed form (data-keys.ts). */
export interface DataKeyMaterial {
  /** HMAC-SHA-256 key of keyed pseudonyms. */
  readonly pseudonym: Buffer;
  /** Root of the token vault: derives the token-id key and the value-sealing key. */
  readonly vault: Buffer;
}

const TOKEN_VALUE_VERSION = 'fwtok1';
/** Distinct values whose pseudonym or token is kept in memory. */
const REMEMBERED = 4096;

function remembered(cache: Map<string, string>, input: string, compute: () => string): string {
  let output = cache.get(input);
  if (output === undefined) {
    output = compute();
    if (cache.size >= REMEMBERED) cache.delete(cache.keys().next().value as string);
    cache.set(input, output);
  }
  return output;
}

/**
 * Keyed pseudonyms and tokens. A pseudonym is one-way: the same value gives the same pseudonym
 * (so readings link across messages) and nobody without the key can test a guess. A token is a
 * pseudonym whose original value is kept in the vault, sealed, for those allowed to detokenize.
 */
export class FieldCrypto {
  readonly #pseudonymKey: Buffer;
  readonly #tokenIdKey: Buffer;
  readonly #tokenValueKey: Buffer;
  // A device sends the same identifier in every message: recent results are kept (bounded) so the
  // HMAC runs once per distinct value, not once per message.
  readonly #pseudonyms = new Map<string, string>();
  readonly #tokens = new Map<string, string>();

  constructor(keys: DataKeyMaterial) {
    this.#pseudonymKey = keys.pseudonym;
    this.#tokenIdKey = Buffer.from(hkdfSync('sha256', keys.vault, Buffer.alloc(0), 'fleetward/token-id/v1', 32));
    this.#tokenValueKey = Buffer.from(hkdfSync('sha256', keys.vault, Buffer.alloc(0), 'fleetward/token-value/v1', 32));
  }

  /** `ps_` + 128 bits of HMAC-SHA-256(key, domain ‖ 0 ‖ JSON of the value), base64url. */
  pseudonym(domain: string, value: string | number | boolean): string {
    const input = `${domain}\0${JSON.stringify(value)}`;
    return remembered(this.#pseudonyms, input, () => `ps_${createHmac('sha256', this.#pseudonymKey).update(input).digest().subarray(0, 16).toString('base64url')}`);
  }

  /**
   * The token of one thing's value of one field (tokens of different things never link). Its
   * vault entry seals the value with AES-256-GCM, the token as associated data, so a sealed value
   * cannot be moved under another token.
   */
  tokenId(thing: string, contract: string, field: string, value: string | number | boolean): string {
    const input = `${thing}\0${contract}\0${field}\0${JSON.stringify(value)}`;
    return remembered(this.#tokens, input, () => `tk_${createHmac('sha256', this.#tokenIdKey).update(input).digest().subarray(0, 16).toString('base64url')}`);
  }

  /** The value sealed for the vault entry of its token. */
  sealTokenValue(token: string, value: string | number | boolean): string {
    const plain = JSON.stringify(value);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#tokenValueKey, iv);
    cipher.setAAD(Buffer.from(token));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${TOKEN_VALUE_VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /** The original value behind a token, from its sealed vault entry. */
  openToken(token: string, sealed: string): string | number | boolean {
    const [version, ivText, bodyText] = sealed.split('.');
    try {
      if (version !== TOKEN_VALUE_VERSION || ivText === undefined || bodyText === undefined) throw new Error('format');
      const body = Buffer.from(bodyText, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', this.#tokenValueKey, Buffer.from(ivText, 'base64url'));
      decipher.setAAD(Buffer.from(token));
      decipher.setAuthTag(body.subarray(body.length - 16));
      const plain = Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
      return JSON.parse(plain) as string | number | boolean;
    } catch {
      throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `the vault entry of token ${token} cannot be opened (modified, or sealed under another vault key)`, { token });
    }
  }
}

const ENVELOPE_VERSION = 'fwenc1';
const HKDF_INFO = 'fleetward/field-encryption/v1';

/** A P-256 recipient public key (SPKI PEM) checked, with its id: the first 8 bytes of SHA-256 of the SPKI DER, hex. */
export function recipientKey(pem: string): { readonly key: KeyObject; readonly kid: string } {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new FleetwardError('FW_ERR_DATA_CONTRACT_INVALID', 'recipientKey is not a PEM public key', {});
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new FleetwardError('FW_ERR_DATA_CONTRACT_INVALID', 'recipientKey must be a P-256 (prime256v1) public key', {});
  return { key, kid: createHash('sha256').update(key.export({ format: 'der', type: 'spki' })).digest().subarray(0, 8).toString('hex') };
}

function rawPoint(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x as string, 'base64url'), Buffer.from(jwk.y as string, 'base64url')]);
}

function pointKey(raw: Buffer): KeyObject {
  if (raw.length !== 65 || raw[0] !== 4) throw new Error('bad point');
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') }, format: 'jwk' });
}

/**
 * Field encryption to a recipient's P-256 key (ECIES): ECDH between an ephemeral key and the
 * recipient key, HKDF-SHA-256 (salt: ephemeral point ‖ recipient point, info
 * `fleetward/field-encryption/v1`) to an AES-256-GCM key; the 96-bit IV is 4 random bytes drawn
 * with the ephemeral key followed by a 64-bit counter, so no IV repeats under one key.
 * Envelope: `fwenc1.<kid>.<ephemeral point>.<iv>.<ciphertext ‖ tag>` (base64url, uncompressed
 * point), associated data `fwenc1|<kid>|<contract>/<field>`. Only the recipient's private key
 * opens it: Fleetward itself cannot. The ephemeral key is reused for `rotateEvery` values (an
 * ECDH per value would cost more than everything else at ingest), far below the 2^32
 * invocations NIST SP 800-38D allows under one key.
 */
export class RecipientEncryptor {
  readonly kid: string;
  readonly #recipient: KeyObject;
  readonly #recipientPoint: Buffer;
  readonly #rotateEvery: number;
  #uses = 0;
  #epk = '';
  #key: Buffer = Buffer.alloc(0);
  /** 96-bit IV: 4 random bytes drawn with each ephemeral key, then a 64-bit counter, so no IV repeats under a key. */
  readonly #iv = Buffer.alloc(12);

  constructor(pem: string, rotateEvery = 1024) {
    const { key, kid } = recipientKey(pem);
    this.kid = kid;
    this.#recipient = key;
    this.#recipientPoint = rawPoint(key);
    this.#rotateEvery = rotateEvery;
  }

  /** The associated data binding envelopes to one field (`<contract>/<field>`); build it once per field. */
  associatedData(context: string): Buffer {
    return Buffer.from(`${ENVELOPE_VERSION}|${this.kid}|${context}`);
  }

  encrypt(plaintext: string, associatedData: Buffer): string {
    if (this.#uses % this.#rotateEvery === 0) this.#rotate();
    this.#uses += 1;
    const iv = this.#iv;
    iv.writeBigUInt64BE(BigInt(this.#uses), 4);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(associatedData);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${ENVELOPE_VERSION}.${this.kid}.${this.#epk}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  #rotate(): void {
    const ephemeral = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const epk = rawPoint(ephemeral.publicKey);
    const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: this.#recipient });
    this.#key = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, this.#recipientPoint]), HKDF_INFO, 32));
    this.#epk = epk.toString('base64url');
    randomBytes(4).copy(this.#iv, 0);
  }
}

/** Opens a field envelope with the recipient's private key (what a recipient runs; also the tests). */
export function openFieldEnvelope(envelope: string, privateKey: KeyObject, context: string): Buffer {
  const parts = envelope.split('.');
  try {
    if (parts.length !== 5 || parts[0] !== ENVELOPE_VERSION) throw new Error('format');
    const [, kid, epkText, ivText, bodyText] = parts as [string, string, string, string, string];
    const epk = Buffer.from(epkText, 'base64url');
    const recipientPoint = rawPoint(createPublicKey(privateKey));
    const shared = diffieHellman({ privateKey, publicKey: pointKey(epk) });
    const key = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, recipientPoint]), HKDF_INFO, 32));
    const body = Buffer.from(bodyText, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(ivText, 'base64url'));
    decipher.setAAD(Buffer.from(`${ENVELOPE_VERSION}|${kid}|${context}`));
    decipher.setAuthTag(body.subarray(body.length - 16));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
  } catch {
    throw new FleetwardError('FW_ERR_KEY_UNREADABLE', 'the field envelope cannot be opened with this key (another recipient, modified, or another field)', {});
  }
}
