/** A complete MQTT Control Packet as received: its bytes, type and fixed header fields. */
export interface Frame {
  readonly bytes: Buffer;
  /** Control packet type, the high nibble of the first byte (MQTT 2.1.2). */
  readonly type: number;
  readonly remainingLength: number;
}

export interface FrameSink {
  frame(frame: Frame): void;
  /**
   * The next packet would be larger than the limit: nothing of it is buffered. `head` holds the
   * bytes of it already received (up to the first chunk's end), for a CONNECT's protocol level.
   */
  tooLarge(type: number, size: number, head: Buffer): void;
  /** The Remaining Length is not a valid Variable Byte Integer (MQTT 1.5.5: at most four bytes). */
  malformed(): void;
}

const MAX_HEADER_BYTES = 5;

/**
 * Cuts a byte stream into MQTT Control Packets without decoding them. It learns each packet's size
 * from its fixed header and refuses one larger than `maxPacketSize` before buffering any of its body
 * (MQTT-3.2.2-15 is the client's duty; this is how the server holds it to it). A packet wholly inside
 * one chunk is passed on as a view of that chunk; only packets split across chunks are copied, once.
 */
export class FrameReader {
  readonly #maxPacketSize: number;
  readonly #sink: FrameSink;
  /** Header bytes of a packet whose fixed header is split across chunks. */
  #header: Buffer | undefined;
  /** Body being assembled across chunks. */
  #partial: Buffer | undefined;
  #partialFilled = 0;
  #partialType = 0;
  #partialRemaining = 0;
  #stopped = false;

  constructor(maxPacketSize: number, sink: FrameSink) {
    this.#maxPacketSize = maxPacketSize;
    this.#sink = sink;
  }

  /** Stops all further output: after an error, or when the connection is closing. */
  stop(): void {
    this.#stopped = true;
    this.#header = undefined;
    this.#partial = undefined;
  }

  push(chunk: Buffer): void {
    let data = chunk;
    if (this.#partial !== undefined) {
      const take = Math.min(data.length, this.#partial.length - this.#partialFilled);
      data.copy(this.#partial, this.#partialFilled, 0, take);
      this.#partialFilled += take;
      data = data.subarray(take);
      if (this.#partialFilled < this.#partial.length) return;
      const bytes = this.#partial;
      this.#partial = undefined;
      this.#sink.frame({ bytes, type: this.#partialType, remainingLength: this.#partialRemaining });
    }
    if (this.#header !== undefined) {
      data = Buffer.concat([this.#header, data]);
      this.#header = undefined;
    }
    let offset = 0;
    while (offset < data.length && !this.#stopped) {
      const header = readFixedHeader(data, offset);
      if (header === 'incomplete') {
        this.#header = Buffer.from(data.subarray(offset));
        return;
      }
      if (header === 'malformed') {
        this.stop();
        this.#sink.malformed();
        return;
      }
      const type = (data[offset] as number) >> 4;
      const size = header.headerLength + header.remainingLength;
      if (size > this.#maxPacketSize) {
        this.stop();
        this.#sink.tooLarge(type, size, data.subarray(offset));
        return;
      }
      if (offset + size <= data.length) {
        this.#sink.frame({ bytes: data.subarray(offset, offset + size), type, remainingLength: header.remainingLength });
        offset += size;
        continue;
      }
      this.#partial = Buffer.allocUnsafe(size);
      this.#partialFilled = data.copy(this.#partial, 0, offset);
      this.#partialType = type;
      this.#partialRemaining = header.remainingLength;
      return;
    }
  }
}

function readFixedHeader(data: Buffer, offset: number): { headerLength: number; remainingLength: number } | 'incomplete' | 'malformed' {
  let value = 0;
  let multiplier = 1;
  for (let i = 1; i < MAX_HEADER_BYTES; i++) {
    if (offset + i >= data.length) return 'incomplete';
    const byte = data[offset + i] as number;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { headerLength: i + 1, remainingLength: value };
    multiplier *= 128;
  }
  return 'malformed';
}
