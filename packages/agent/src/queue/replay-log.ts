import { QueueEntries } from './queue-entries.js';
import type { QueueFile } from './queue-file-system.js';
import { decodeRecord } from './queue-record.js';

/** What reading the log back found; `entries` is the queue as the log describes it. */
export interface LogReplay {
  readonly entries: QueueEntries;
  readonly droppedTotal: number;
  /** Highest sequence number the log has used; the next message gets a higher one. */
  readonly lastSeq: number;
  /** Offset just past the last complete line: where the next record goes. */
  readonly validEnd: number;
  /** Complete lines that failed their checksum or shape, or came out of order: skipped. */
  readonly corruptRecords: number;
  readonly corruptBytes: number;
  /** Bytes after the last line break: a record whose write never finished (crash, power cut). */
  readonly tornTailBytes: number;
}

const NEWLINE = 0x0a;
const CHUNK_BYTES = 1024 * 1024;

/**
 * Reads the log in chunks and replays it: memory stays bounded by the live entries plus one line,
 * and a line longer than `maxLineBytes` (which no record this queue keeps can be) is skipped
 * without being buffered, so a damaged or foreign file cannot exhaust memory at start-up.
 */
export async function replayLog(file: QueueFile, maxLineBytes: number): Promise<LogReplay> {
  const replay = new Replay();
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let position = 0;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let oversized = false;
  for (let read = await file.read(chunk, position); read > 0; read = await file.read(chunk, position)) {
    const data = chunk.subarray(0, read);
    let from = 0;
    for (let newline = data.indexOf(NEWLINE); newline !== -1; newline = data.indexOf(NEWLINE, from)) {
      const piece = data.subarray(from, newline);
      const size = partBytes + piece.length + 1;
      if (oversized || size > maxLineBytes) replay.skip(size);
      else replay.line(parts.length === 0 ? piece : Buffer.concat([...parts, piece]), size);
      parts = [];
      partBytes = 0;
      oversized = false;
      from = newline + 1;
    }
    const rest = data.subarray(from);
    partBytes += rest.length;
    if (partBytes >= maxLineBytes) {
      oversized = true;
      parts = [];
    } else if (rest.length > 0) {
      parts.push(Buffer.from(rest));
    }
    position += read;
  }
  return replay.result(position - partBytes, partBytes);
}

class Replay {
  readonly #entries = new QueueEntries();
  #droppedTotal = 0;
  #lastSeq = 0;
  #corruptRecords = 0;
  #corruptBytes = 0;

  line(bytes: Buffer, size: number): void {
    const record = decodeRecord(bytes);
    if (record === null) return this.skip(size);
    if (record.kind === 'trim') {
      this.#entries.removeThrough(record.through);
      this.#droppedTotal = Math.max(this.#droppedTotal, record.droppedTotal);
      this.#lastSeq = Math.max(this.#lastSeq, record.through);
      return;
    }
    // Sequence numbers only grow; a message that goes back is not one this queue wrote there.
    if (record.message.seq <= this.#lastSeq) return this.skip(size);
    this.#entries.push(record.message, size);
    this.#lastSeq = record.message.seq;
  }

  skip(size: number): void {
    this.#corruptRecords += 1;
    this.#corruptBytes += size;
  }

  result(validEnd: number, tornTailBytes: number): LogReplay {
    return {
      entries: this.#entries,
      droppedTotal: this.#droppedTotal,
      lastSeq: this.#lastSeq,
      validEnd,
      corruptRecords: this.#corruptRecords,
      corruptBytes: this.#corruptBytes,
      tornTailBytes,
    };
  }
}
