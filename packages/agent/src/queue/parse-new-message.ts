import { FleetwardError } from '@fleetward/protocol';
import { isStringRecord, type QueuedProperties } from './queue-record.js';

/** What the application hands to `OfflineQueue.append`. */
export interface NewQueuedMessage {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly properties?: QueuedProperties;
}

export interface ParsedNewMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly properties: QueuedProperties | undefined;
}

// MQTT-1.5.4-1: a UTF-8 string is at most 65,535 bytes.
const MAX_TOPIC_BYTES = 65_535;

/**
 * Checked when queued, not when published: a message no broker can accept would sit at the head
 * of the queue forever and hold back everything behind it.
 */
export function parseNewMessage(message: NewQueuedMessage): ParsedNewMessage {
  const { topic, payload, properties } = message;
  // MQTT-4.7.3-1 (not empty), MQTT-3.3.2-2 (no wildcards in a Topic Name), MQTT-4.7.3-2 (no U+0000)
  if (typeof topic !== 'string' || topic.length === 0 || /[+#]/.test(topic) || topic.includes('\0') || Buffer.byteLength(topic) > MAX_TOPIC_BYTES) {
    throw invalid('A queued message needs a valid MQTT topic name (not empty, no wildcards or U+0000, at most 65,535 bytes)', { topic: String(topic).slice(0, 200) });
  }
  if (!(payload instanceof Uint8Array)) throw invalid('A queued message payload must be bytes (Buffer or Uint8Array)');
  if (properties === undefined) return { topic, payload: Buffer.from(payload), properties: undefined };
  if (typeof properties !== 'object' || properties === null) throw invalid('Message properties must be an object');
  const { contentType, userProperties } = properties;
  if (contentType !== undefined && typeof contentType !== 'string') throw invalid('contentType must be a string');
  if (userProperties !== undefined && !isStringRecord(userProperties)) throw invalid('userProperties must map strings to strings');
  return {
    topic,
    // Copies: the caller may reuse its buffer and objects once append returns.
    payload: Buffer.from(payload),
    properties:
      contentType === undefined && userProperties === undefined
        ? undefined
        : { ...(contentType === undefined ? {} : { contentType }), ...(userProperties === undefined ? {} : { userProperties: { ...userProperties } }) },
  };
}

function invalid(message: string, details: Readonly<Record<string, unknown>> = {}): FleetwardError {
  return new FleetwardError('FW_ERR_VALIDATION', message, details);
}
