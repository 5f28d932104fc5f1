/** The limits every topic name and topic filter is checked against. */
export interface TopicLimits {
  /** Longest topic name or filter, in UTF-8 bytes (MQTT-4.7.3-3 caps it at 65,535). */
  readonly maxTopicLengthBytes: number;
  /** Most levels (`/`-separated parts) in a topic name or filter. */
  readonly maxTopicLevels: number;
}

/** Why a topic name or filter is refused: `malformed` breaks the spec, the others break a limit. */
export type TopicProblem = 'malformed' | 'too-long' | 'too-deep';

/** Whether a string is longer than `max` UTF-8 bytes, without encoding it when the answer is plain. */
export function exceedsBytes(text: string, max: number): boolean {
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return Buffer.byteLength(text) > max;
}
