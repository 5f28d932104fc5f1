import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';
import { writePrivateFile } from '../identity/key-file.js';

/**
 * Puts the device's initial trusted root (shipped with the image) where tuf-js keeps its trusted
 * metadata, unless a root is already there: roots the device has since rotated to, and the
 * timestamp, snapshot and targets it has seen (its rollback and freeze protection), stay across
 * restarts and updates. The shipped file must be TUF root metadata.
 *
 * Apart from the TUF client (signed-repository.ts), so that opening the update client at every
 * start does not load it: @tufjs/models is loaded only on the first start, to check the root.
 */
export async function installTrustedRoot(trustedRoot: string, metadataDir: string): Promise<void> {
  const current = join(metadataDir, 'root.json');
  if (await stat(current).then(() => true, () => false)) return;
  let bytes: string;
  try {
    bytes = await readFile(trustedRoot, 'utf8');
    const { Metadata, MetadataKind } = await import('@tufjs/models');
    Metadata.fromJSON(MetadataKind.Root, JSON.parse(bytes) as Parameters<typeof Metadata.fromJSON>[1]);
  } catch (error) {
    throw new FleetwardError('FW_ERR_CONFIG_INVALID', `the trusted root ${trustedRoot} cannot be used: ${(error as Error).message}`, { key: 'updates.trustedRoot' }, { cause: error });
  }
  await writePrivateFile(current, bytes);
}
