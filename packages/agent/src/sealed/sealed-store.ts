import { randomBytes } from 'node:crypto';
import { open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetwardError, MAX_SEALED_PLAINTEXT_BYTES, parseSealedEnvelope, sealJson, sealToRecipient, thingSealingInfo, type SealedEnvelope, type SealingRecipient } from '@fleetward/protocol';
import { ensurePrivateDir, writePrivateFile } from '../identity/key-file.js';

export interface SealedStoreOptions {
  /** The thing whose values these are: the backend opens them only when this thing sends them. */
  readonly thing: string;
  /** Records kept at most (count); beyond it `put` refuses rather than fill the device's storage. */
  readonly maxRecords?: number;
}

export const DEFAULT_MAX_SEALED_RECORDS = 10_000;

const SUFFIX = '.sealed.json';
/** Milliseconds (zero-padded, so names sort in time order), then 64 random bits. */
const ID = /^[0-9]{13}-[0-9a-f]{16}$/;
/** An envelope of the largest plaintext, as JSON, with room to spare. */
const MAX_FILE_BYTES = Math.ceil(((MAX_SEALED_PLAINTEXT_BYTES + 16) * 4) / 3) + 1024;

/**
 * What the device must keep until it can upload, sealed to the backend's public key: a stolen
 * device (or its storage card) yields envelopes that nothing on it can open, because the device
 * never holds the private key. Each record is one file, 0600, in a 0700 folder, written whole or
 * not at all. `take` reads a record and leaves it in place; `remove` it once the backend has
 * acknowledged it, so a crash between the two sends it again instead of losing it.
 */
export class SealedStore {
  readonly #dir: string;
  readonly #info: string;
  readonly #maxRecords: number;
  #recipient: SealingRecipient;
  #count: number;
  #lastMs = 0;

  private constructor(dir: string, recipient: SealingRecipient, options: SealedStoreOptions, count: number) {
    this.#dir = dir;
    this.#info = thingSealingInfo(options.thing);
    this.#maxRecords = options.maxRecords ?? DEFAULT_MAX_SEALED_RECORDS;
    this.#recipient = recipient;
    this.#count = count;
  }

  /** Opens (or creates) the store folder; refuses a folder others can enter, and drops half-written records. */
  static async open(dir: string, recipient: SealingRecipient, options: SealedStoreOptions): Promise<SealedStore> {
    checkRecipient(recipient, thingSealingInfo(options.thing));
    await ensurePrivateDir(dir);
    const names = await readdir(dir);
    for (const name of names.filter((n) => n.endsWith(`${SUFFIX}.tmp`))) await unlink(join(dir, name)).catch(() => undefined);
    return new SealedStore(dir, recipient, options, names.filter((n) => ID.test(n.slice(0, -SUFFIX.length)) && n.endsWith(SUFFIX)).length);
  }

  /** The backend key new records are sealed to. */
  get keyId(): string {
    return this.#recipient.keyId;
  }

  /** After the backend rotated its key: new records use it; records already sealed keep theirs (the backend still opens them). */
  setRecipient(recipient: SealingRecipient): void {
    checkRecipient(recipient, this.#info);
    this.#recipient = recipient;
  }

  /** Seals a JSON value and stores it; returns its id. */
  async put(value: unknown): Promise<string> {
    if (this.#count >= this.#maxRecords) throw new FleetwardError('FW_ERR_DATA_BACKLOG', `the sealed store holds ${this.#count} records, its limit; upload or remove some first`, { limit: this.#maxRecords });
    const envelope = sealJson(value, this.#recipient, this.#info).$sealed;
    const id = this.#nextId();
    await writePrivateFile(this.#file(id), JSON.stringify(envelope));
    this.#count += 1;
    return id;
  }

  /** Ids of the stored records, oldest first. */
  async list(): Promise<readonly string[]> {
    return (await readdir(this.#dir))
      .filter((n) => n.endsWith(SUFFIX))
      .map((n) => n.slice(0, -SUFFIX.length))
      .filter((id) => ID.test(id))
      .sort();
  }

  /** A record's envelope, to upload as `{ "$sealed": envelope }`; the record stays until `remove`. */
  async take(id: string): Promise<SealedEnvelope> {
    const file = this.#file(id);
    let text: string;
    try {
      const handle = await open(file, 'r');
      try {
        const { size } = await handle.stat();
        if (size > MAX_FILE_BYTES) throw new FleetwardError('FW_ERR_VALIDATION', `sealed record ${id} is larger than any envelope`, { id });
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new FleetwardError('FW_ERR_NOT_FOUND', `no sealed record ${id}`, { id });
      throw error;
    }
    try {
      return parseSealedEnvelope(JSON.parse(text));
    } catch {
      throw new FleetwardError('FW_ERR_VALIDATION', `sealed record ${id} is damaged`, { id });
    }
  }

  /** Deletes a record (once uploaded); removing one that is gone is not an error. */
  async remove(id: string): Promise<void> {
    try {
      await unlink(this.#file(id));
      this.#count = Math.max(0, this.#count - 1);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** Ids are checked before they become paths: `../` never leaves the folder. */
  #file(id: string): string {
    if (!ID.test(id)) throw new FleetwardError('FW_ERR_VALIDATION', 'a sealed record id is 13 digits, a dash and 16 hex digits', { id: id.slice(0, 64) });
    return join(this.#dir, `${id}${SUFFIX}`);
  }

  /** Increasing within this process even if the wall clock steps back, so `list` keeps the order of `put`. */
  #nextId(): string {
    this.#lastMs = Math.max(Date.now(), this.#lastMs + 1);
    return `${String(this.#lastMs).padStart(13, '0')}-${randomBytes(8).toString('hex')}`;
  }
}

/** A bad key (wrong id, not X25519, a low-order point) is refused when it is set, not at the next `put`. */
function checkRecipient(recipient: SealingRecipient, info: string): void {
  sealToRecipient(new Uint8Array(0), recipient, info);
}
