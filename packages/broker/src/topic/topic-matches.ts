/**
 * The reference matcher: whether a Topic Filter pattern (no `$share/` prefix) matches a Topic Name,
 * level by level (MQTT-4.7). `#` matches its parent level and any number of child levels
 * (`sport/#` matches `sport`), `+` exactly one level, and a filter starting with a wildcard never
 * matches a topic starting with `$` (MQTT-4.7.2-1). The broker's tries are tested against it.
 */
export function topicMatches(pattern: string, topic: string): boolean {
  const filterLevels = pattern.split('/');
  const topicLevels = topic.split('/');
  if (topic.startsWith('$') && (filterLevels[0] === '+' || filterLevels[0] === '#')) return false;
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i];
    if (level === '#') return true;
    if (i >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}
