import { readFile, writeFile } from 'node:fs/promises';
import { FleetwardError } from '@fleetward/protocol';

/** Reads a file named on the command line; a missing or unreadable file is a usage error. */
export async function readInputFile(file: string, what = file): Promise<string> {
  return readFile(file, 'utf8').catch((error: Error) => {
    throw new FleetwardError('FW_ERR_USAGE', `cannot read ${what}: ${error.message}`);
  });
}

/**
 * Writes a command's output file. Secret output (a private key) is created 0600 and never
 * replaces an existing file; public output (certificates, CSRs) is 0644.
 */
export async function writeOutputFile(file: string, content: string, kind: 'public' | 'secret'): Promise<void> {
  await writeFile(file, content, kind === 'secret' ? { mode: 0o600, flag: 'wx' } : { mode: 0o644 }).catch((error: NodeJS.ErrnoException) => {
    const why = error.code === 'EEXIST' ? 'it exists already (a private key is never overwritten)' : error.message;
    throw new FleetwardError('FW_ERR_USAGE', `cannot write ${file}: ${why}`);
  });
}
