import fc from 'fast-check';
import { generate, type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { FrameReader, type Frame } from '../../src/codec/frame-reader.js';

function reader(maxPacketSize: number) {
  const frames: Frame[] = [];
  const events: string[] = [];
  const frameReader = new FrameReader(maxPacketSize, {
    frame: (frame) => frames.push({ ...frame, bytes: Buffer.from(frame.bytes) }),
    tooLarge: (type, size) => events.push(`too large: type ${type}, ${size} bytes`),
    malformed: () => events.push('malformed'),
  });
  return { frameReader, frames, events };
}

const packets: Packet[] = [
  { cmd: 'pingreq' },
  { cmd: 'publish', topic: 'a/b', payload: Buffer.alloc(300, 1), qos: 1, messageId: 9, retain: false, dup: false },
  { cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'x/#', qos: 1 }] },
  { cmd: 'publish', topic: 't', payload: Buffer.from('hi'), qos: 0, retain: true, dup: false },
];

describe('cutting a byte stream into packets', () => {
  it('finds the same packets however the stream is split into chunks', () => {
    const stream = Buffer.concat(packets.map((packet) => generate(packet)));
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 20 }), (cuts) => {
        const { frameReader, frames, events } = reader(1024);
        let start = 0;
        for (const cut of [...cuts].sort((a, b) => a - b)) {
          frameReader.push(stream.subarray(start, cut));
          start = cut;
        }
        frameReader.push(stream.subarray(start));
        expect(events).toEqual([]);
        expect(Buffer.concat(frames.map((frame) => frame.bytes))).toEqual(stream);
        expect(frames.map((frame) => frame.type)).toEqual([12, 3, 8, 3]);
      }),
    );
  });

  it('MQTT-3.2.2-15: refuses a packet above the limit from its fixed header, before any of its body arrives', () => {
    const { frameReader, frames, events } = reader(100);
    frameReader.push(Buffer.from([0x30, 0xe8, 0x07]));
    expect(events).toEqual(['too large: type 3, 1003 bytes']);
    frameReader.push(Buffer.alloc(2000));
    expect(frames).toEqual([]);
  });

  it('MQTT 1.5.5: a Remaining Length of more than four bytes is malformed', () => {
    const { frameReader, events } = reader(1024);
    frameReader.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    expect(events).toEqual(['malformed']);
  });

  it('stops all output once stopped', () => {
    const { frameReader, frames } = reader(1024);
    frameReader.stop();
    frameReader.push(generate({ cmd: 'pingreq' }));
    expect(frames).toEqual([]);
  });
});
