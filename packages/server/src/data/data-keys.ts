import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import type { DataKeyMaterial } from './field-crypto.js';

/**
 * What seals data keys at rest: the node's key ring (identity/key-ring.ts), which seals CA keys
 * the same way (AES-256-GCM under the key-encryption key, the label bound in as associated data).
 */
export interface KeySealer {
  seal(plaintext: Uint8Array, label: string): string;
  open(sealed: string, label: string): Buffer;
}

const DATA_KEYS = ['pseudonym', 'vault'] as const;
type DataKeyName = (typeof DATA_KEYS)[number];

/** The label a data key is sealed under (its row name in `data_keys`, so a sealed key cannot be moved to another row). */
export function dataKeyLabel(name: string): string {
  return `data:${name}`;
}

/**
 * Opens the data keys, creating each on first use. Several nodes may start at once: a key is
 * inserted only if absent, then read back, so every node uses the one that won.
 */
export async function loadDataKeys(store: Store, sealer: KeySealer, clock: Clock): Promise<DataKeyMaterial> {
  const opened: Partial<Record<DataKeyName, Buffer>> = {};
  for (const name of DATA_KEYS) {
    let row = await store.db.selectFrom('data_keys').select('sealed').where('name', '=', name).executeTakeFirst();
    if (row === undefined) {
      const sealed = sealer.seal(randomBytes(32), dataKeyLabel(name));
      await store.db.insertInto('data_keys').values({ name, sealed, created_at: clock.now().toISOString() }).onConflict((oc) => oc.column('name').doNothing()).execute();
      row = await store.db.selectFrom('data_keys').select('sealed').where('name', '=', name).executeTakeFirstOrThrow();
    }
    opened[name] = sealer.open(row.sealed, dataKeyLabel(name));
  }
  return { pseudonym: opened.pseudonym as Buffer, vault: opened.vault as Buffer };
}

/** Re-seals every data key (the backend sealing keys included) with the active key-encryption key (part of a KEK rotation); returns how many. */
export async function resealDataKeys(db: Kysely<Tables>, sealer: { reseal(sealed: string, label: string): string }): Promise<number> {
  const rows = await db.selectFrom('data_keys').select(['name', 'sealed']).execute();
  for (const row of rows) {
    await db.updateTable('data_keys').set({ sealed: sealer.reseal(row.sealed, dataKeyLabel(row.name)) }).where('name', '=', row.name).execute();
  }
  return rows.length;
}
