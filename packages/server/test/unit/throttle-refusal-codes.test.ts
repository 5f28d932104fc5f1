import { describe, expect, it } from 'vitest';
import { refusalResponse, type Refusal } from '../../src/access/throttling/index.js';

describe('what a refused device sees, per protocol version', () => {
  it.each<[Refusal, string, number | undefined, string, number | undefined]>([
    // refusal, MQTT 5 packet, code, MQTT 3.1.1 packet, code
    ['not-authorized', 'connack', 0x87, 'connack', 5],
    ['banned', 'connack', 0x8a, 'connack', 5],
    ['flapping', 'connack', 0x8a, 'connack', 5],
    ['connect-rate', 'connack', 0x9f, 'connack', 3],
    ['server-full', 'connack', 0x89, 'connack', 3],
    ['thing-full', 'connack', 0x97, 'connack', 3],
    ['message-rate', 'puback', 0x97, 'close', undefined],
    ['byte-rate', 'puback', 0x97, 'close', undefined],
    ['rate-disconnect', 'disconnect', 0x96, 'close', undefined],
    ['payload-too-large', 'disconnect', 0x95, 'close', undefined],
    ['session-taken-over', 'disconnect', 0x8e, 'close', undefined],
    ['too-many-subscriptions', 'suback', 0x97, 'suback', 0x80],
    ['handshake-rate', 'close', undefined, 'close', undefined],
    ['address-banned', 'close', undefined, 'close', undefined],
  ])('%s: MQTT 5 %s %s, MQTT 3.1.1 %s %s', (refusal, packet5, code5, packet4, code4) => {
    const v5 = refusalResponse(refusal, 5);
    const v4 = refusalResponse(refusal, 4);
    expect([v5.packet, 'code' in v5 ? v5.code : undefined]).toEqual([packet5, code5]);
    expect([v4.packet, 'code' in v4 ? v4.code : undefined]).toEqual([packet4, code4]);
    expect(v5.reasonString.length).toBeGreaterThan(0);
  });
});
