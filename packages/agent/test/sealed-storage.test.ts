import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetwardError, openSealed, parseSealingKey, SEALED_ALG, sealingPublicKeyOf, thingSealingInfo, type SealedEnvelope } from '@fleetward/protocol';
import { SealedStore } from '../src/sealed/sealed-store.js';

const dirs: string[] = [];
afterEach(async () => {
  while (dirs.length > 0) await rm(dirs.pop() as string, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fw-sealed-'));
  dirs.push(dir);
  return join(dir, 'sealed');
}

/** A backend key as the device receives it: only the public half, in its published form. */
function backendKey(keyId: string): { readonly privateKey: KeyObject; readonly published: ReturnType<typeof parseSealingKey> } {
  const { privateKey } = generateKeyPairSync('x25519');
  return { privateKey, published: parseSealingKey({ alg: SEALED_ALG, keyId, publicKey: sealingPublicKeyOf(privateKey) }) };
}

/** What the backend does on ingest: opens with its private keys, bound to the sending thing. */
function backendOpens(envelope: SealedEnvelope, keys: Readonly<Record<string, KeyObject>>, thing = 'sensor-1'): unknown {
  return JSON.parse(openSealed(envelope, (kid) => keys[kid], thingSealingInfo(thing)).toString('utf8'));
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (error instanceof FleetwardError) return error.code;
    throw error;
  }
}

const codeOfSync = (run: () => unknown): Promise<string> => codeOf(Promise.resolve().then(run));

const WIFI = { ssid: 'Müller-Home-5G', psk: 'correct horse battery staple', seen: [{ bssid: 'a4:cf:12:9e:3b:07', rssi: -61 }] };

describe('sealed local storage (agent)', () => {
  it('keeps records sealed to the backend on disk (0700 folder, 0600 files), with no plaintext anywhere, in put order', async () => {
    const dir = await tempDir();
    const k1 = backendKey('k1');
    const store = await SealedStore.open(dir, k1.published, { thing: 'sensor-1' });
    const ids = [await store.put(WIFI), await store.put({ n: 2 }), await store.put('three')];
    expect(await store.list()).toEqual(ids);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const name of await readdir(dir)) {
      expect((await stat(join(dir, name))).mode & 0o777, name).toBe(0o600);
      const bytes = await readFile(join(dir, name));
      for (const secret of ['Müller', 'M\\u00fcller', 'correct horse', 'a4:cf:12', 'ssid', 'psk', 'three']) expect(bytes.includes(secret), `${name} holds ${secret}`).toBe(false);
    }
    const envelope = await store.take(ids[0] as string);
    expect(envelope.kid).toBe('k1');
    expect(backendOpens(envelope, { k1: k1.privateKey })).toEqual(WIFI);
    // take leaves the record until the upload is acknowledged.
    expect(await store.list()).toHaveLength(3);
    await store.remove(ids[0] as string);
    await store.remove(ids[0] as string);
    expect(await store.list()).toEqual(ids.slice(1));
    expect(await codeOf(store.take(ids[0] as string))).toBe('FW_ERR_NOT_FOUND');
  });

  it('a thief with the whole device cannot open a record: no key on it opens, and the backend refuses it from another device', async () => {
    const dir = await tempDir();
    const k1 = backendKey('k1');
    const store = await SealedStore.open(dir, k1.published, { thing: 'sensor-1' });
    const id = await store.put(WIFI);
    const envelope = await store.take(id);
    // Everything the device holds is the store folder and the public key; any key the thief makes fails.
    const thiefKey = generateKeyPairSync('x25519').privateKey;
    for (const lookup of [() => thiefKey, () => undefined]) expect(await codeOfSync(() => openSealed(envelope, lookup, thingSealingInfo('sensor-1')))).toBe('FW_ERR_SEALED_INVALID');
    // Replaying the stolen envelope from another device's identity does not open it either.
    expect(await codeOfSync(() => backendOpens(envelope, { k1: k1.privateKey }, 'sensor-2'))).toBe('FW_ERR_SEALED_INVALID');
    // A record file rewritten on the device is refused, not opened to something else.
    const file = join(dir, `${id}.sealed.json`);
    const text = await readFile(file, 'utf8');
    const { ct } = JSON.parse(text) as { ct: string };
    const flipped = Buffer.from(ct, 'base64url');
    flipped[0] = (flipped[0] as number) ^ 1;
    await writeFile(file, text.replace(ct, flipped.toString('base64url')));
    const tampered = await store.take(id);
    expect(tampered.ct).not.toBe(ct);
    expect(await codeOfSync(() => backendOpens(tampered, { k1: k1.privateKey }))).toBe('FW_ERR_SEALED_INVALID');
    await writeFile(file, '{"v":1');
    expect(await codeOf(store.take(id))).toBe('FW_ERR_VALIDATION');
  });

  it('after a backend key rotation new records use the new key, old ones keep theirs, and the backend opens both', async () => {
    const dir = await tempDir();
    const k1 = backendKey('k1');
    const k2 = backendKey('k2');
    const store = await SealedStore.open(dir, k1.published, { thing: 'sensor-1' });
    const before = await store.put({ n: 1 });
    store.setRecipient(k2.published);
    expect(store.keyId).toBe('k2');
    const after = await store.put({ n: 2 });
    const keys = { k1: k1.privateKey, k2: k2.privateKey };
    expect((await store.take(before)).kid).toBe('k1');
    expect((await store.take(after)).kid).toBe('k2');
    expect(backendOpens(await store.take(before), keys)).toEqual({ n: 1 });
    expect(backendOpens(await store.take(after), keys)).toEqual({ n: 2 });
    // A bad key is refused when it is set, and the store keeps the one it had.
    expect(await codeOfSync(() => store.setRecipient({ keyId: 'k3', publicKey: Buffer.alloc(32) }))).toBe('FW_ERR_KEY_REJECTED');
    expect(store.keyId).toBe('k2');
  });

  it('survives a restart, drops half-written records, and bounds what it keeps', async () => {
    const dir = await tempDir();
    const k1 = backendKey('k1');
    const first = await SealedStore.open(dir, k1.published, { thing: 'sensor-1', maxRecords: 2 });
    const ids = [await first.put(1), await first.put(2)];
    expect(await codeOf(first.put(3))).toBe('FW_ERR_DATA_BACKLOG');
    await writeFile(join(dir, `${ids[0] as string}.sealed.json.tmp`), '{"v":', { mode: 0o600 });
    const reopened = await SealedStore.open(dir, k1.published, { thing: 'sensor-1', maxRecords: 2 });
    expect(await reopened.list()).toEqual(ids);
    expect(await readdir(dir)).toHaveLength(2);
    expect(await codeOf(reopened.put(3))).toBe('FW_ERR_DATA_BACKLOG');
    await reopened.remove(ids[0] as string);
    expect(await codeOf(reopened.put(3))).toBe('ok');
  });

  it('fail/refuses a folder others can enter, ids that would leave the folder, and values that are not JSON', async () => {
    const dir = await tempDir();
    const k1 = backendKey('k1');
    const store = await SealedStore.open(dir, k1.published, { thing: 'sensor-1' });
    for (const id of ['../../etc/passwd', '0000000000001-0000000000000000/../x', '', '1-2']) {
      expect(await codeOf(store.take(id)), id).toBe('FW_ERR_VALIDATION');
      expect(await codeOf(store.remove(id)), id).toBe('FW_ERR_VALIDATION');
    }
    expect(await codeOf(store.put(undefined))).toBe('FW_ERR_VALIDATION');
    await chmod(dir, 0o755);
    expect(await codeOf(SealedStore.open(dir, k1.published, { thing: 'sensor-1' }))).toBe('FW_ERR_HOME_INSECURE');
  });
});
