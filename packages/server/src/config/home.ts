import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readFile, realpath, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';

/** Where each thing lives inside the data folder (`FLEETWARD_HOME`). */
export interface HomeLayout {
  readonly root: string;
  readonly keyRingFile: string;
  readonly databaseFile: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** Firmware artifacts, content-addressed (`sha256/<hex>`). */
  readonly artifactsDir: string;
}

export function homeLayout(root: string): HomeLayout {
  return {
    root,
    keyRingFile: join(root, 'kek.json'),
    databaseFile: join(root, 'fleetward.db'),
    caFile: join(root, 'ca.pem'),
    serverCertFile: join(root, 'server.pem'),
    serverKeyFile: join(root, 'server-key.sealed'),
    artifactsDir: join(root, 'artifacts'),
  };
}

/** Creates the data folder with mode 0700 if it is missing, then checks it like ssh does. */
export async function ensureHome(layout: HomeLayout): Promise<void> {
  await mkdir(layout.root, { recursive: true, mode: 0o700 });
  // The folder itself may be reached through a link (a mounted volume); what it resolves to is checked.
  await checkPrivate(await realpath(layout.root), 'data folder');
}

export async function homeExists(layout: HomeLayout): Promise<boolean> {
  return (await statOrNull(layout.root)) !== null;
}

export async function isInitialized(layout: HomeLayout): Promise<boolean> {
  return (await statOrNull(layout.keyRingFile)) !== null;
}

/**
 * Refuses a folder or file that anyone but its owner can read, write or enter, or that belongs
 * to another user, or that is a symbolic link (which could point a secret somewhere else).
 */
export async function checkPrivate(path: string, what: string): Promise<void> {
  const stat = await statOrNull(path);
  if (stat === null) throw new FleetwardError('FW_ERR_HOME_NOT_INITIALIZED', `${what} ${path} does not exist; run \`fleetward init\``, { path });
  const mode = stat.mode & 0o777;
  const fix = stat.isDirectory() ? `chmod 700 ${path}` : `chmod 600 ${path}`;
  if (stat.isSymbolicLink()) {
    throw new FleetwardError('FW_ERR_HOME_INSECURE', `${what} ${path} is a symbolic link; refusing to use it`, { path });
  }
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new FleetwardError('FW_ERR_HOME_INSECURE', `${what} ${path} belongs to uid ${stat.uid}, not to the current user (uid ${uid})`, { path, owner: stat.uid });
  }
  if ((mode & 0o077) !== 0) {
    throw new FleetwardError(
      'FW_ERR_HOME_INSECURE',
      `${what} ${path} is accessible by others (mode ${mode.toString(8).padStart(4, '0')}); fix it with: ${fix}`,
      { path, mode: `0${mode.toString(8)}` },
    );
  }
}

/** Reads a secret file after checking that only its owner can access it. */
export async function readPrivateFile(path: string, what: string): Promise<Buffer> {
  await checkPrivate(path, what);
  return readFile(path);
}

/**
 * Writes a file readable only by its owner (0600). The content goes to a new temporary file
 * first and is renamed into place, so a crash never leaves a half-written secret.
 */
export async function writePrivateFile(path: string, data: string | Uint8Array): Promise<void> {
  await writeAtomically(path, data, 0o600);
}

/** Writes a public file (such as the CA chain) atomically, readable by all. */
export async function writePublicFile(path: string, data: string | Uint8Array): Promise<void> {
  await writeAtomically(path, data, 0o644);
}

async function writeAtomically(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  // The rename is durable only once the folder is: without this, a power cut could lose kek.json
  // after the database already holds keys sealed with it.
  const folder = await open(dirname(path), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

async function statOrNull(path: string) {
  try {
    return await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
