import { FleetwardError } from '@fleetward/protocol';
import { readPrivateFile, writePrivateFile, type HomeLayout } from '../config/home.js';
import { KeyRing } from './key-ring.js';

export async function loadKeyRing(layout: HomeLayout): Promise<KeyRing> {
  const bytes = await readPrivateFile(layout.keyRingFile, 'key-encryption key file');
  let document: unknown;
  try {
    document = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `key ring ${layout.keyRingFile} is corrupt: not JSON`, { path: layout.keyRingFile });
  }
  return KeyRing.fromJSON(document, layout.keyRingFile);
}

export async function saveKeyRing(layout: HomeLayout, ring: KeyRing): Promise<void> {
  await writePrivateFile(layout.keyRingFile, `${JSON.stringify(ring, null, 2)}\n`);
}
