/**
 * Parses what a device asks for into levels, refusing what MQTT itself refuses: a topic name is
 * non-empty without wildcards or U+0000 (MQTT-4.7.3-1, MQTT-3.3.2-2, MQTT-4.7.3-2); a filter has
 * `#` only as its whole last level and `+` only as a whole level (MQTT-4.7.1-1, MQTT-4.7.1-2).
 * Returns null for a malformed request.
 */
export function topicNameLevels(topic: string): string[] | null {
  if (topic.length === 0 || /[+#]/.test(topic) || topic.includes('\u0000')) return null;
  return topic.split('/');
}

const SHARE_PREFIX = '$share/';

/**
 * A subscribe filter's levels. A shared subscription `$share/{group}/{filter}` is decided on its
 * filter: what it can receive (MQTT-4.8.2-1, MQTT-4.8.2-2 for the group name).
 */
export function topicFilterLevels(requested: string): string[] | null {
  let filter = requested;
  if (requested.startsWith(SHARE_PREFIX)) {
    const slash = requested.indexOf('/', SHARE_PREFIX.length);
    if (slash <= SHARE_PREFIX.length) return null;
    if (/[+#]/.test(requested.slice(SHARE_PREFIX.length, slash))) return null;
    filter = requested.slice(slash + 1);
  }
  if (filter.length === 0 || filter.includes('\u0000')) return null;
  const levels = filter.split('/');
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return null;
    if (level.includes('+') && level !== '+') return null;
  }
  return levels;
}

/** A client id to decide on: non-empty (an empty one is replaced by the broker's assigned id first) and without U+0000. */
export function isClientId(id: string): boolean {
  return id.length > 0 && !id.includes('\u0000');
}
