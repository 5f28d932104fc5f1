/** The few MQTT 3.1.1 packets the bench's device load generator sends, encoded by hand, and a stream splitter for what it receives. */

export const DISCONNECT = Buffer.from([0xe0, 0x00]);

export function connectPacket(clientId: string, keepAliveSeconds: number): Buffer {
  const id = Buffer.from(clientId, 'utf8');
  // MQTT-3.1.2: protocol name, level 4, flags (clean session), keep alive; MQTT-3.1.3: client id.
  const body = Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, keepAliveSeconds >> 8, keepAliveSeconds & 0xff]), length16(id)]);
  return packet(0x10, body);
}

export function subscribePacket(filter: string, qos: 0 | 1): Buffer {
  return packet(0x82, Buffer.concat([Buffer.from([0, 1]), length16(Buffer.from(filter, 'utf8')), Buffer.from([qos])]));
}

/** A PUBLISH; for QoS 1 the packet id is at `idOffset` (write it in place in a copy). */
export function publishPacket(topic: string, qos: 0 | 1, payload: Buffer): { readonly bytes: Buffer; readonly idOffset: number } {
  const name = length16(Buffer.from(topic, 'utf8'));
  const body = Buffer.concat([name, qos === 1 ? Buffer.from([0, 1]) : Buffer.alloc(0), payload]);
  const bytes = packet(0x30 | (qos << 1), body);
  return { bytes, idOffset: bytes.length - body.length + name.length };
}

export function pubackPacket(id: number): Buffer {
  return Buffer.from([0x40, 0x02, id >> 8, id & 0xff]);
}

function length16(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
}

function packet(firstByte: number, body: Buffer): Buffer {
  const length: number[] = [];
  let rest = body.length;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    length.push(byte);
  } while (rest > 0);
  return Buffer.concat([Buffer.from([firstByte, ...length]), body]);
}

/** Cuts a byte stream into MQTT packets: `onPacket(firstByte, body)` for each complete one. */
export class PacketSplitter {
  #pending: Buffer | null = null;
  readonly #onPacket: (firstByte: number, body: Buffer) => void;

  constructor(onPacket: (firstByte: number, body: Buffer) => void) {
    this.#onPacket = onPacket;
  }

  push(chunk: Buffer): void {
    const data = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    let offset = 0;
    while (offset + 2 <= data.length) {
      let length = 0;
      let multiplier = 1;
      let index = offset + 1;
      let complete = false;
      for (; index < data.length && index < offset + 5; index += 1) {
        const byte = data[index] as number;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) break;
      const start = index + 1;
      if (start + length > data.length) break;
      this.#onPacket(data[offset] as number, data.subarray(start, start + length));
      offset = start + length;
    }
    this.#pending = offset === data.length ? null : Buffer.from(data.subarray(offset));
  }
}
