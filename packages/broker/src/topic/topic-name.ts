import { exceedsBytes, type TopicLimits, type TopicProblem } from './topic-limits.js';

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;

/**
 * Checks the Topic Name of a PUBLISH in one pass: at least one character (MQTT-4.7.3-1), no
 * wildcard (MQTT-3.3.2-2, MQTT-4.7.0-1), no U+0000 (MQTT-4.7.3-2), then our length and depth limits.
 */
export function checkTopicName(topic: string, limits: TopicLimits): TopicProblem | undefined {
  if (topic.length === 0) return 'malformed';
  let levels = 1;
  for (let i = 0; i < topic.length; i++) {
    const code = topic.charCodeAt(i);
    if (code === SLASH) levels++;
    else if (code === PLUS || code === HASH || code === 0) return 'malformed';
  }
  if (exceedsBytes(topic, limits.maxTopicLengthBytes)) return 'too-long';
  if (levels > limits.maxTopicLevels) return 'too-deep';
  return undefined;
}
