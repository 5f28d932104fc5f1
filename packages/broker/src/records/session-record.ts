import type { StoredSession } from '../persistence/persistence.js';
import { flightTransitions, type Flight, type FlightState } from '../session/outgoing-window.js';
import { ByteReader, RecordFormatError } from './byte-reader.js';
import { ByteWriter } from './byte-writer.js';
import { readDelivery, readSubscription, writeDelivery, writeSubscription } from './message-records.js';

/** Bumped whenever the layout changes, so a node never misreads a session another version wrote. */
const FORMAT = 1;
const flightStates = Object.keys(flightTransitions) as FlightState[];

/** A stored session as one binary record: subscriptions, flights with their exact payloads, QoS 2 ids. */
export function encodeSession(session: StoredSession): Buffer {
  const writer = new ByteWriter();
  writer.u8(FORMAT).string(session.clientId).u32(session.expiryIntervalSeconds);
  writer.u8(session.expiresAt === undefined ? 0 : 1);
  if (session.expiresAt !== undefined) writer.f64(session.expiresAt);
  writer.u32(session.subscriptions.length);
  for (const subscription of session.subscriptions) writeSubscription(writer, subscription);
  writer.u32(session.flights.length);
  for (const flight of session.flights) {
    writer.u16(flight.packetId).u8(flightStates.indexOf(flight.state));
    writeDelivery(writer, flight.delivery);
  }
  writer.u32(session.incomingQos2.length);
  for (const packetId of session.incomingQos2) writer.u16(packetId);
  return writer.finish();
}

export function decodeSession(record: Buffer): StoredSession {
  const reader = new ByteReader(record);
  const format = reader.u8();
  if (format !== FORMAT) throw new RecordFormatError(`session record format ${format}, expected ${FORMAT}`);
  const clientId = reader.string();
  const expiryIntervalSeconds = reader.u32();
  const expiresAt = reader.u8() === 0 ? undefined : reader.f64();
  const subscriptions = repeat(reader, () => readSubscription(reader));
  const flights = repeat(reader, (): Flight => {
    const packetId = reader.u16();
    const state = flightStates[reader.u8()];
    if (state === undefined) throw new RecordFormatError('unknown flight state');
    return { packetId, state, delivery: readDelivery(reader) };
  });
  const incomingQos2 = repeat(reader, () => reader.u16());
  reader.end();
  return { clientId, expiryIntervalSeconds, expiresAt, subscriptions, flights, incomingQos2 };
}

function repeat<T>(reader: ByteReader, read: () => T): T[] {
  const items: T[] = [];
  for (let count = reader.u32(); count > 0; count--) items.push(read());
  return items;
}
