import { invalid, quote } from './invalid.js';
import { POLICY_LIMITS } from './limits.js';
import { parseTemplate, type TemplatePart } from './variables.js';

/** One level of a topic pattern before substitution: a wildcard, or text with variables. */
export type LevelTemplate = { readonly wildcard: '+' | '#' } | { readonly parts: readonly TemplatePart[]; readonly first: boolean };

/**
 * A resource before substitution. `client/*` is the only client wildcard (any client id); every
 * other client id is exact. Topic patterns use MQTT wildcards, whole levels only.
 */
export type ResourceTemplate =
  | { readonly kind: 'client'; readonly any: true }
  | { readonly kind: 'client'; readonly any: false; readonly parts: readonly TemplatePart[] }
  | { readonly kind: 'topic'; readonly levels: readonly LevelTemplate[] };

export const CLIENT_PREFIX = 'client/';
export const TOPIC_PREFIX = 'topic/';

/** Parses `client/<id>` or `topic/<pattern>`; throws FW_ERR_VALIDATION naming `path`. */
export function parseResource(resource: string, path: string): ResourceTemplate {
  if (resource.length > POLICY_LIMITS.maxResourceLength) {
    throw invalid(path, `a resource is at most ${POLICY_LIMITS.maxResourceLength} characters`, { limit: POLICY_LIMITS.maxResourceLength });
  }
  if (resource.includes('\u0000')) throw invalid(path, 'a resource must not contain U+0000'); // MQTT-4.7.3-2
  if (resource.startsWith(CLIENT_PREFIX)) return parseClient(resource.slice(CLIENT_PREFIX.length), path);
  if (resource.startsWith(TOPIC_PREFIX)) return parseTopicPattern(resource.slice(TOPIC_PREFIX.length), path);
  throw invalid(path, `resource ${quote(resource)} must be client/<id> or topic/<pattern>`);
}

function parseClient(id: string, path: string): ResourceTemplate {
  if (id === '*') return { kind: 'client', any: true };
  if (id.length === 0) throw invalid(path, 'a client resource needs a client id (or * for any)');
  // `*` inside an id would read as a prefix wildcard that does not exist: refuse rather than guess.
  if (id.includes('*')) throw invalid(path, '* is allowed only alone, as client/* (any client id)');
  return { kind: 'client', any: false, parts: parseTemplate(id, path) };
}

function parseTopicPattern(pattern: string, path: string): ResourceTemplate {
  if (pattern.length === 0) throw invalid(path, 'a topic pattern must not be empty'); // MQTT-4.7.3-1
  const levels = pattern.split('/');
  if (levels.length > POLICY_LIMITS.maxPatternLevels) {
    throw invalid(path, `a topic pattern has at most ${POLICY_LIMITS.maxPatternLevels} levels`, { limit: POLICY_LIMITS.maxPatternLevels });
  }
  return { kind: 'topic', levels: levels.map((level, i) => parseLevel(level, i, levels.length, path)) };
}

function parseLevel(level: string, index: number, count: number, path: string): LevelTemplate {
  if (level === '#') {
    if (index !== count - 1) throw invalid(path, '# must be the last level'); // MQTT-4.7.1-1
    return { wildcard: '#' };
  }
  if (level === '+') return { wildcard: '+' };
  if (level.includes('#') || level.includes('+')) throw invalid(path, `+ and # must be a whole level, not part of ${quote(level)}`); // MQTT-4.7.1-2
  return { parts: parseTemplate(level, path), first: index === 0 };
}

/** The actions a resource kind serves. */
export function resourceKindOf(resource: string): 'client' | 'topic' | null {
  if (resource.startsWith(CLIENT_PREFIX)) return 'client';
  if (resource.startsWith(TOPIC_PREFIX)) return 'topic';
  return null;
}
