import { createPublicKey, type webcrypto } from 'node:crypto';
import { dirname } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';
import type { Slot } from 'graphene-pk11';
import type { Crypto, CryptoKey } from 'node-webcrypto-p11';
import type { KeyStorageConfig } from '../config/agent-config.js';
import type { DeviceKey, DeviceKeyStore } from './device-key.js';
import { readSecretFile } from './key-file.js';

type Pkcs11Config = Extract<KeyStorageConfig, { kind: 'pkcs11' }>;

/**
 * Device keys generated inside a PKCS#11 token (sensitive, never extractable): the CSR is signed by
 * the token through node-webcrypto-p11, and TLS signs its handshakes there through OpenSSL's PKCS#11
 * engine (libp11). The agent's folder keeps only the key's label. One module session per process,
 * never finalized: finalizing would end the engine's session too.
 */
export class Pkcs11KeyStore implements DeviceKeyStore {
  readonly file = 'device.p11' as const;
  readonly #crypto: Crypto;
  readonly #config: Pkcs11Config;
  readonly #pin: string;
  readonly #thing: string;

  private constructor(crypto: Crypto, config: Pkcs11Config, pin: string, thing: string) {
    this.#crypto = crypto;
    this.#config = config;
    this.#pin = pin;
    this.#thing = thing;
  }

  static async open(thing: string, config: Pkcs11Config): Promise<Pkcs11KeyStore> {
    const pin = (await readSecretFile(config.pinFile, 'PIN file')).trim();
    // Loaded only when a token is configured: most devices never need the native modules.
    const [{ Crypto }, graphene] = await Promise.all([import('node-webcrypto-p11'), import('graphene-pk11')]);
    let slot: Slot | undefined;
    try {
      const module = graphene.Module.load(config.module, 'fleetward-agent');
      try {
        module.initialize();
      } catch (error) {
        if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test((error as Error).message)) throw error;
      }
      const slots = module.getSlots(true);
      for (let i = 0; i < slots.length; i++) if (slots.items(i).getToken().label.trim() === config.token) slot = slots.items(i);
    } catch (error) {
      throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `cannot load the PKCS#11 module ${config.module}: ${(error as Error).message}`, { module: config.module });
    }
    if (slot === undefined) throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `no PKCS#11 token labelled ${config.token} in ${config.module}`, { token: config.token });
    const session = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
    const crypto = new Crypto({ session });
    try {
      crypto.login(pin);
    } catch (error) {
      session.close();
      throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `cannot log in to PKCS#11 token ${config.token}: ${(error as Error).message}`, { token: config.token });
    }
    // libp11 reads its module from the environment and OpenSSL finds engines by id in this folder.
    process.env.PKCS11_MODULE_PATH = config.module;
    process.env.OPENSSL_ENGINES ??= dirname(config.engine);
    return new Pkcs11KeyStore(crypto, config, pin, thing);
  }

  async generate(): Promise<DeviceKey> {
    const label = `fleetward-${this.#thing}-${Date.now().toString(36)}`;
    const parameters: webcrypto.EcKeyGenParams & { label: string; token: boolean; sensitive: boolean } = { name: 'ECDSA', namedCurve: 'P-256', label, token: true, sensitive: true };
    const keys = (await this.#crypto.subtle.generateKey(parameters, false, ['sign', 'verify'])) as { privateKey: CryptoKey; publicKey: CryptoKey };
    await this.#crypto.keyStorage.setItem(keys.privateKey);
    await this.#crypto.keyStorage.setItem(keys.publicKey);
    return this.#deviceKey(label, keys);
  }

  async load(reference: string): Promise<DeviceKey> {
    const label = reference.trim();
    const keys = await this.#find(label);
    if (keys.privateKey === undefined || keys.publicKey === undefined) throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `the PKCS#11 token ${this.#config.token} has no key pair labelled ${label}`, { key: label });
    return this.#deviceKey(label, { privateKey: keys.privateKey, publicKey: keys.publicKey });
  }

  async discard(key: DeviceKey): Promise<void> {
    const found = await this.#find(key.reference);
    for (const id of found.ids) await this.#crypto.keyStorage.removeItem(id);
  }

  async #find(label: string): Promise<{ privateKey?: CryptoKey; publicKey?: CryptoKey; ids: string[] }> {
    const found: { privateKey?: CryptoKey; publicKey?: CryptoKey; ids: string[] } = { ids: [] };
    for (const id of await this.#crypto.keyStorage.keys()) {
      const key = await this.#crypto.keyStorage.getItem(id);
      if ((key?.algorithm as { label?: string } | undefined)?.label !== label || key === null) continue;
      found.ids.push(id);
      if (key.type === 'private') found.privateKey = key;
      if (key.type === 'public') found.publicKey = key;
    }
    return found;
  }

  async #deviceKey(label: string, keys: { privateKey: CryptoKey; publicKey: CryptoKey }): Promise<DeviceKey> {
    const spki = Buffer.from(await this.#crypto.subtle.exportKey('spki', keys.publicKey));
    const crypto = this.#crypto;
    return {
      storage: 'pkcs11',
      // RFC 7512 URI; the PIN rides in it because libp11 asks no one interactively. It is never logged.
      tls: { engine: 'pkcs11', identifier: `pkcs11:token=${encodeURIComponent(this.#config.token)};object=${encodeURIComponent(label)};type=private?pin-value=${encodeURIComponent(this.#pin)}` },
      publicKey: createPublicKey({ key: spki, format: 'der', type: 'spki' }),
      reference: label,
      signing: () => Promise.resolve({ keys: keys as unknown as { privateKey: webcrypto.CryptoKey; publicKey: webcrypto.CryptoKey }, crypto: crypto as unknown as webcrypto.Crypto }),
    };
  }
}
