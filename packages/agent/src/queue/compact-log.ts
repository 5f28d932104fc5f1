import type { QueueFile, QueueFileSystem } from './queue-file-system.js';
import { encodeRecord, type QueuedMessage, type TrimRecord } from './queue-record.js';

const WRITE_BYTES = 1024 * 1024;

/**
 * Writes a fresh log at `path`: a checkpoint (trimmed-through position and drop count, so
 * sequence numbers and the count survive even when no message is left) and then the live
 * messages, in writes of about 1 MiB, fsynced. Returns the open file for the caller to rename into
 * place; on failure the partial file is removed.
 */
export async function writeCompactedLog(
  fs: QueueFileSystem,
  path: string,
  checkpoint: Omit<TrimRecord, 'kind'>,
  messages: readonly QueuedMessage[],
): Promise<{ readonly file: QueueFile; readonly bytes: number }> {
  await fs.remove(path);
  const file = await fs.openFile(path);
  let bytes = 0;
  try {
    let chunk: Buffer[] = [encodeRecord({ kind: 'trim', ...checkpoint })];
    let chunkBytes = 0;
    for (const message of messages) {
      const line = encodeRecord({ kind: 'message', message });
      chunk.push(line);
      chunkBytes += line.length;
      if (chunkBytes < WRITE_BYTES) continue;
      bytes += await writeAt(file, chunk, bytes);
      chunk = [];
      chunkBytes = 0;
    }
    bytes += await writeAt(file, chunk, bytes);
    await file.sync();
    return { file, bytes };
  } catch (error) {
    await file.close().catch(() => undefined);
    await fs.remove(path).catch(() => undefined);
    throw error;
  }
}

async function writeAt(file: QueueFile, lines: readonly Buffer[], position: number): Promise<number> {
  const data = Buffer.concat(lines);
  await file.write(data, position);
  return data.length;
}
