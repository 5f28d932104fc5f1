import { constants } from 'node:fs';
import { mkdir, open, realpath, rename, rm, stat } from 'node:fs/promises';

export interface QueuePathInfo {
  readonly isDirectory: boolean;
  readonly isFile: boolean;
  /** Permission bits (`mode & 0o777`). */
  readonly mode: number;
  readonly uid: number;
  readonly size: number;
}

/** An open queue file, written at explicit positions so a failed write can be cut off again. */
export interface QueueFile {
  info(): Promise<QueuePathInfo>;
  /** Reads up to `buffer.length` bytes at `position`; returns how many were read (0 at the end). */
  read(buffer: Buffer, position: number): Promise<number>;
  /** Writes all of `data` at `position`, or rejects (possibly after writing part of it). */
  write(data: Buffer, position: number): Promise<void>;
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  /** Makes the file readable and writable by its owner only (0600). */
  restrictMode(): Promise<void>;
  close(): Promise<void>;
}

/** What the offline queue needs from the file system; tests inject failures (ENOSPC, EIO) through it. */
export interface QueueFileSystem {
  /** Creates the folder with mode 0700 if it is missing; returns its real path. */
  makeDirectory(path: string): Promise<string>;
  describe(path: string): Promise<QueuePathInfo>;
  /** Opens a regular file for reading and writing, creating it with mode 0600; never follows a symbolic link. */
  openFile(path: string): Promise<QueueFile>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; a missing file is not an error. */
  remove(path: string): Promise<void>;
  /** Makes renames and creations inside the folder durable. */
  syncDirectory(path: string): Promise<void>;
}

export const nodeQueueFileSystem: QueueFileSystem = {
  async makeDirectory(path) {
    await mkdir(path, { recursive: true, mode: 0o700 });
    return realpath(path);
  },
  async describe(path) {
    return pathInfo(await stat(path));
  },
  async openFile(path) {
    const handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    return {
      info: async () => pathInfo(await handle.stat()),
      read: async (buffer, position) => (await handle.read(buffer, 0, buffer.length, position)).bytesRead,
      async write(data, position) {
        for (let offset = 0; offset < data.length; ) {
          const { bytesWritten } = await handle.write(data, offset, data.length - offset, position + offset);
          offset += bytesWritten;
        }
      },
      sync: () => handle.sync(),
      truncate: (length) => handle.truncate(length),
      restrictMode: () => handle.chmod(0o600),
      close: () => handle.close(),
    };
  },
  rename: (from, to) => rename(from, to),
  remove: (path) => rm(path, { force: true }),
  async syncDirectory(path) {
    const folder = await open(path, 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  },
};

function pathInfo(stats: { isDirectory(): boolean; isFile(): boolean; mode: number; uid: number; size: number }): QueuePathInfo {
  return { isDirectory: stats.isDirectory(), isFile: stats.isFile(), mode: stats.mode & 0o777, uid: stats.uid, size: stats.size };
}
