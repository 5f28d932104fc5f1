/** A record that does not have the shape its reader expects: truncated, or written by another format. */
export class RecordFormatError extends Error {
  override readonly name = 'RecordFormatError';
}

/** Reads what a ByteWriter wrote, in the same order; any overrun throws a RecordFormatError. Pure. */
export class ByteReader {
  readonly #buffer: Buffer;
  #offset = 0;

  constructor(buffer: Buffer) {
    this.#buffer = buffer;
  }

  get done(): boolean {
    return this.#offset === this.#buffer.length;
  }

  u8(): number {
    this.#need(1);
    return this.#buffer[this.#offset++] as number;
  }

  u16(): number {
    this.#need(2);
    const value = this.#buffer.readUInt16BE(this.#offset);
    this.#offset += 2;
    return value;
  }

  u32(): number {
    this.#need(4);
    const value = this.#buffer.readUInt32BE(this.#offset);
    this.#offset += 4;
    return value;
  }

  f64(): number {
    this.#need(8);
    const value = this.#buffer.readDoubleBE(this.#offset);
    this.#offset += 8;
    return value;
  }

  /** A copy of the bytes, so the result never pins the (possibly much larger) record it came from. */
  bytes(): Buffer {
    const size = this.u32();
    this.#need(size);
    const value = Buffer.from(this.#buffer.subarray(this.#offset, this.#offset + size));
    this.#offset += size;
    return value;
  }

  string(): string {
    const size = this.u32();
    this.#need(size);
    const value = this.#buffer.toString('utf8', this.#offset, this.#offset + size);
    this.#offset += size;
    return value;
  }

  /** Throws unless every byte was read: trailing bytes mean a different format. */
  end(): void {
    if (!this.done) throw new RecordFormatError(`${this.#buffer.length - this.#offset} unexpected trailing bytes`);
  }

  #need(bytes: number): void {
    if (this.#offset + bytes > this.#buffer.length) throw new RecordFormatError('record is truncated');
  }
}
