import { exceedsBytes, type TopicLimits, type TopicProblem } from './topic-limits.js';

const SHARE_PREFIX = '$share/';

/** A Topic Filter taken apart: what is matched, and the share name of a shared subscription. */
export interface ParsedTopicFilter {
  /** The filter as the client sent it. */
  readonly filter: string;
  /** The part matched against topic names (the whole filter unless it is shared). */
  readonly pattern: string;
  readonly shareGroup: string | undefined;
}

/**
 * Parses a SUBSCRIBE or UNSUBSCRIBE Topic Filter: at least one character (MQTT-4.7.3-1), no U+0000
 * (MQTT-4.7.3-2), `#` alone and last (MQTT-4.7.1-1), `+` alone in its level (MQTT-4.7.1-2), and a
 * shared subscription as `$share/{ShareName}/{filter}` with a non-empty ShareName without `/`, `+`
 * or `#` followed by a filter (MQTT-4.8.2-1, MQTT-4.8.2-2). Then our length and depth limits.
 */
export function parseTopicFilter(filter: string, limits: TopicLimits): ParsedTopicFilter | TopicProblem {
  let pattern = filter;
  let shareGroup: string | undefined;
  if (filter.startsWith(SHARE_PREFIX)) {
    const slash = filter.indexOf('/', SHARE_PREFIX.length);
    if (slash <= SHARE_PREFIX.length) return 'malformed';
    shareGroup = filter.slice(SHARE_PREFIX.length, slash);
    if (shareGroup.includes('+') || shareGroup.includes('#')) return 'malformed';
    pattern = filter.slice(slash + 1);
  }
  if (pattern.length === 0 || filter.includes('\u0000')) return 'malformed';
  const levels = pattern.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return 'malformed';
    if (level.includes('+') && level !== '+') return 'malformed';
  }
  if (exceedsBytes(filter, limits.maxTopicLengthBytes)) return 'too-long';
  if (levels.length > limits.maxTopicLevels) return 'too-deep';
  return { filter, pattern, shareGroup };
}

export function isTopicProblem(value: ParsedTopicFilter | TopicProblem): value is TopicProblem {
  return typeof value === 'string';
}
