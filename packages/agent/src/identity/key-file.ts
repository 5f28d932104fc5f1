import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';

/** A device key pair: generated on the device, the private half never leaves it. */
export interface DeviceKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export function generateDeviceKey(): DeviceKeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export function keyPem(key: DeviceKeyPair): string {
  return key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Creates (0700) or checks the agent's folder: a folder others can enter would expose the key. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await refuseIfShared(dir, 'folder');
}

/**
 * Reads a private key file, refusing one that group or others can read or write: a key others can
 * read is a key that may be copied, and a device must not go on using it as if it were not.
 */
export async function readKeyFile(file: string): Promise<{ pem: string; key: KeyObject }> {
  const pem = await readSecretFile(file, 'key file');
  try {
    return { pem, key: createPrivateKey(pem) };
  } catch {
    throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `${file} does not hold a private key`, { file });
  }
}

/** Reads a secret (a key, an enrollment token), refusing a file group or others can read or write. */
export async function readSecretFile(file: string, what = 'secret file'): Promise<string> {
  await refuseIfShared(file, what);
  return readFile(file, 'utf8');
}

/** Writes a secret file 0600 and durably (temp file, fsync, rename), so a crash leaves the old or the new file, never half of one. */
export async function writePrivateFile(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.tmp`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
}

async function refuseIfShared(path: string, what: string): Promise<void> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (error) {
    throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `the ${what} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { path });
  }
  if ((mode & 0o077) !== 0) {
    throw new FleetwardError('FW_ERR_HOME_INSECURE', `the ${what} ${path} is accessible to others (mode ${(mode & 0o777).toString(8)}); make it ${what === 'folder' ? '0700' : '0600'}`, { path, mode: (mode & 0o777).toString(8) });
  }
}
