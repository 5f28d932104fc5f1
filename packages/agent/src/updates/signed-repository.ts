import { createReadStream } from 'node:fs';
import { copyFile, open, rename, rm } from 'node:fs/promises';
import type { TargetFile } from '@tufjs/models';
import { Updater } from 'tuf-js';
import type { MtlsFetcher } from './mtls-fetcher.js';

/** Where one job's repository is (from the job message: only where to look, never what to trust). */
export interface RepositoryLocation {
  readonly metadataUrl: string;
  readonly targetsUrl: string;
}

export interface DownloadHooks {
  /** Called once the bytes are all there, before they are checked. */
  readonly verifying?: () => Promise<void>;
  /** Fault injection: flips one byte of the downloaded file before it is checked. */
  readonly corrupt?: boolean;
}

/**
 * One pass of the TUF client workflow (spec §5) against a repository, with tuf-js doing every
 * check: root rotation (5.3), timestamp (5.4, freeze and rollback), snapshot (5.5, mix-and-match),
 * targets (5.6), then the target's length and hashes (5.7, arbitrary software and endless data).
 */
export class SignedRepository {
  readonly #updater: Updater;
  readonly #fetcher: MtlsFetcher;
  readonly #location: RepositoryLocation;

  constructor(metadataDir: string, location: RepositoryLocation, fetcher: MtlsFetcher) {
    this.#location = location;
    this.#fetcher = fetcher;
    this.#updater = new Updater({ metadataDir, metadataBaseUrl: location.metadataUrl, targetBaseUrl: location.targetsUrl, fetcher });
  }

  /** Refreshes the metadata and returns the signed entry for `target`, or null when no signed target has that path. */
  async targetInfo(target: string): Promise<TargetFile | null> {
    await this.#updater.refresh();
    return (await this.#updater.getTargetInfo(target)) ?? null;
  }

  /** Consistent snapshots (TUF spec 5.7.3): the file is named by its SHA-256, `<sha256>.<target>`, so it never changes. */
  targetUrl(info: TargetFile): string {
    return `${this.#location.targetsUrl.replace(/\/+$/, '')}/${info.hashes.sha256 ?? ''}.${info.path}`;
  }

  /** Whether `file` already holds the signed target (a download verified before an install that had to wait). */
  async cached(info: TargetFile, file: string): Promise<boolean> {
    try {
      await info.verify(createReadStream(file));
      return true;
    } catch {
      await rm(file, { force: true });
      return false;
    }
  }

  /** Downloads the target (at most its signed length), checks its length and hashes, and only then puts it at `file`. */
  async download(info: TargetFile, file: string, hooks: DownloadHooks = {}): Promise<void> {
    await this.#fetcher.downloadFile(this.targetUrl(info), info.length, async (temp) => {
      if (hooks.corrupt) await flipOneByte(temp);
      await hooks.verifying?.();
      // TUF spec 5.7.3: the length and every hash in the signed targets metadata must match.
      await info.verify(createReadStream(temp));
      await copyFile(temp, `${file}.tmp`);
      await rename(`${file}.tmp`, file);
    });
  }
}

async function flipOneByte(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const { size } = await handle.stat();
    if (size === 0) return;
    const at = Math.floor(size / 2);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}
