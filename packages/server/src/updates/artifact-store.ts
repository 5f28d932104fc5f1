import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FleetwardError } from '@fleetward/protocol';

/** What was written: the bytes' SHA-256 (hex) and length. */
export interface StoredBlob {
  readonly sha256: string;
  readonly size: number;
}

/**
 * Artifact bytes, content-addressed under the data folder (`artifacts/sha256/<hex>`, files 0600):
 * written to a temporary file while hashed, then renamed into place, so a failed or oversized
 * upload leaves nothing behind and a stored file is never partly written.
 */
export class ArtifactStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async put(source: Readable, maxBytes: number): Promise<StoredBlob> {
    await mkdir(join(this.#dir, 'sha256'), { recursive: true, mode: 0o700 });
    const temporary = join(this.#dir, `.upload-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            size += chunk.length;
            if (size > maxBytes) throw new FleetwardError('FW_ERR_PAYLOAD_TOO_LARGE', `an artifact is at most ${maxBytes} bytes`, { maxBytes });
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(temporary, { mode: 0o600, flush: true }),
      );
      if (size === 0) throw new FleetwardError('FW_ERR_VALIDATION', 'the artifact is empty');
      const sha256 = hash.digest('hex');
      await rename(temporary, this.pathOf(sha256));
      return { sha256, size };
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  pathOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new FleetwardError('FW_ERR_VALIDATION', 'not a SHA-256 digest');
    return join(this.#dir, 'sha256', sha256);
  }

  async has(sha256: string): Promise<boolean> {
    return stat(this.pathOf(sha256)).then(
      () => true,
      () => false,
    );
  }

  /** A stream of bytes `start` to `end` (inclusive) of a stored artifact. */
  read(sha256: string, range?: { readonly start: number; readonly end: number }): Readable {
    return createReadStream(this.pathOf(sha256), { ...range, highWaterMark: 1024 * 1024 });
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }
}
