/**
 * Appends fixed-width numbers, strings and byte runs to a growing buffer: the write side of the
 * record format that Redis persistence and the cluster bus share. Pure.
 */
export class ByteWriter {
  #buffer: Buffer;
  #length = 0;

  constructor(initialBytes = 256) {
    this.#buffer = Buffer.allocUnsafe(initialBytes);
  }

  get length(): number {
    return this.#length;
  }

  u8(value: number): this {
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
    return this;
  }

  u16(value: number): this {
    this.#reserve(2);
    this.#length = this.#buffer.writeUInt16BE(value, this.#length);
    return this;
  }

  u32(value: number): this {
    this.#reserve(4);
    this.#length = this.#buffer.writeUInt32BE(value, this.#length);
    return this;
  }

  /** A double: epoch milliseconds and sequence numbers beyond 2^32 fit exactly. */
  f64(value: number): this {
    this.#reserve(8);
    this.#length = this.#buffer.writeDoubleBE(value, this.#length);
    return this;
  }

  /** Bytes preceded by their length (u32), copied exactly. */
  bytes(value: Uint8Array): this {
    this.u32(value.length);
    this.#reserve(value.length);
    this.#buffer.set(value, this.#length);
    this.#length += value.length;
    return this;
  }

  /** A UTF-8 string preceded by its byte length (u32). */
  string(value: string): this {
    const size = Buffer.byteLength(value, 'utf8');
    this.u32(size);
    this.#reserve(size);
    this.#length += this.#buffer.write(value, this.#length, 'utf8');
    return this;
  }

  /** The bytes written so far, as a buffer of their own. */
  finish(): Buffer {
    return Buffer.from(this.#buffer.subarray(0, this.#length));
  }

  #reserve(bytes: number): void {
    if (this.#length + bytes <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#length + bytes));
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }
}
