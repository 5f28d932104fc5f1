import type { LevelTemplate, ResourceTemplate } from './resource-template.js';
import type { ConnectionFacts, Effect } from './types.js';
import { resolveVariable, type TemplatePart, type VariableName } from './variables.js';

/**
 * A resource after substitution for one connection.
 *
 * - `levels`: a topic pattern (`+`/`#` levels are wildcards, every other level literal text);
 * - `exact` / `any-client`: a client id, or every client id;
 * - `nothing`: an allow resource with an unresolved variable matches nothing (it must never widen);
 * - `everything`: a deny resource with an unresolved variable denies every topic (`$` topics too) or
 *   every client id: a deny that cannot be evaluated is not skipped (fail closed).
 */
export type CompiledResource = (
  | { readonly match: 'levels'; readonly levels: readonly string[] }
  | { readonly match: 'exact'; readonly id: string }
  | { readonly match: 'any-client' }
  | { readonly match: 'nothing' }
  | { readonly match: 'everything' }
) & {
  readonly kind: 'client' | 'topic';
  /** The resource after substitution, for explanations (unresolved variables are left as written). */
  readonly text: string;
  readonly unresolved: readonly VariableName[];
};

/**
 * Substitutes variables as literal text. A value is unresolved when it is missing or empty, and, in a
 * topic pattern, when it contains `/`, `+`, `#` or U+0000 (it would add levels or wildcards: a thing
 * named `+` must not match every thing's topics) or when it would start the pattern with `$` (a value
 * must not move a pattern into the reserved `$` namespaces). In a client id only U+0000 is refused.
 */
export function substituteResource(template: ResourceTemplate, effect: Effect, facts: ConnectionFacts): CompiledResource {
  if (template.kind === 'client') {
    if (template.any) return { kind: 'client', match: 'any-client', text: 'client/*', unresolved: [] };
    const { text, unresolved } = render(template.parts, facts, false);
    const prefixed = `client/${text}`;
    if (unresolved.length > 0) return unresolvedResource('client', effect, prefixed, unresolved);
    return { kind: 'client', match: 'exact', id: text, text: prefixed, unresolved };
  }
  const rendered = template.levels.map((level) => renderLevel(level, facts));
  const unresolved = rendered.flatMap((r) => r.unresolved);
  const prefixed = `topic/${rendered.map((r) => r.text).join('/')}`;
  if (unresolved.length > 0) return unresolvedResource('topic', effect, prefixed, unresolved);
  return { kind: 'topic', match: 'levels', levels: rendered.map((r) => r.text), text: prefixed, unresolved };
}

function unresolvedResource(kind: 'client' | 'topic', effect: Effect, text: string, unresolved: readonly VariableName[]): CompiledResource {
  return { kind, match: effect === 'allow' ? 'nothing' : 'everything', text, unresolved };
}

function renderLevel(level: LevelTemplate, facts: ConnectionFacts): { text: string; unresolved: VariableName[] } {
  if ('wildcard' in level) return { text: level.wildcard, unresolved: [] };
  return render(level.parts, facts, true, level.first);
}

const TOPIC_UNSAFE = /[/+#]/;

function render(parts: readonly TemplatePart[], facts: ConnectionFacts, topic: boolean, firstLevel = false): { text: string; unresolved: VariableName[] } {
  let text = '';
  const unresolved: VariableName[] = [];
  for (const [i, part] of parts.entries()) {
    if ('text' in part) {
      text += part.text;
      continue;
    }
    const value = resolveVariable(part.variable, facts);
    if (value === undefined || !usable(value, topic, firstLevel && i === 0)) {
      unresolved.push(part.variable);
      text += `\${${part.variable}}`;
    } else {
      text += value;
    }
  }
  return { text, unresolved };
}

function usable(value: string, topic: boolean, startsPattern: boolean): boolean {
  if (value.length === 0 || value.includes('\u0000')) return false; // MQTT-4.7.3-2, MQTT-1.5.4-2
  if (!topic) return true;
  return !TOPIC_UNSAFE.test(value) && !(startsPattern && value.startsWith('$'));
}
