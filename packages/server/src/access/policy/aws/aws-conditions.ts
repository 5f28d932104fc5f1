import { isIP } from 'node:net';
import { parseCidr } from '../cidr.js';
import { quote } from '../invalid.js';
import { ATTRIBUTE_KEY_PATTERN } from '../limits.js';
import type { Conditions } from '../types.js';
import type { AwsStatement } from './aws-document.js';
import { untranslatable } from './untranslatable.js';

const ATTRIBUTE_KEY = /^iot:connection\.thing\.attributes\[(.*)\]$/i;

export interface TranslatedConditions {
  readonly conditions: Conditions | undefined;
  /** `iot:Connection.Thing.IsAttached` was required: the caller checks every resource names the thing. */
  readonly requiresAttachedThing: boolean;
}

/**
 * Translates the Condition block where an exact equivalent exists; operators are ANDed in both:
 * - `IpAddress` on `aws:SourceIp` → `sourceAddress` (a bare address becomes /32 or /128);
 * - `StringEquals` on `iot:Connection.Thing.Attributes[K]` with one value → `thingAttributes`;
 * - `Bool` `iot:Connection.Thing.IsAttached` = true → dropped when every resource of the statement
 *   names `${iot:Connection.Thing.ThingName}` (which resolves only for an attached thing, in both).
 * Anything else (other keys, operators, `...IfExists`, `ForAllValues:`, several attribute values) is refused.
 */
export function translateConditions(statement: AwsStatement): TranslatedConditions {
  const block = statement.condition;
  if (block === undefined) return { conditions: undefined, requiresAttachedThing: false };
  let sourceAddress: string[] | undefined;
  const attributes: Record<string, string> = {};
  let requiresAttachedThing = false;
  for (const [operator, keys] of Object.entries(block)) {
    const path = `${statement.path}/Condition/${operator}`;
    if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) throw untranslatable(path, statement.label, `condition operator ${quote(operator)} must map keys to values`);
    for (const [key, value] of Object.entries(keys as Record<string, unknown>)) {
      const keyPath = `${path}/${key}`;
      const values = conditionValues(value, keyPath, statement.label);
      if (operator === 'IpAddress' && key.toLowerCase() === 'aws:sourceip') sourceAddress = [...(sourceAddress ?? []), ...values.map((v) => cidrOf(v, keyPath, statement.label))];
      else if (operator === 'StringEquals' && ATTRIBUTE_KEY.test(key)) addAttribute(attributes, key, values, keyPath, statement.label);
      else if (operator === 'Bool' && key.toLowerCase() === 'iot:connection.thing.isattached' && values.length === 1 && values[0] === 'true') requiresAttachedThing = true;
      else throw untranslatable(keyPath, statement.label, `condition ${operator} on ${quote(key)} has no exact Fleetward equivalent (sourceAddress, thingAttributes and certIssuer do)`);
    }
  }
  const conditions: Conditions = {
    ...(sourceAddress !== undefined && { sourceAddress: [...new Set(sourceAddress)] }),
    ...(Object.keys(attributes).length > 0 && { thingAttributes: attributes }),
  };
  return { conditions: Object.keys(conditions).length > 0 ? conditions : undefined, requiresAttachedThing };
}

function conditionValues(value: unknown, path: string, label: string): string[] {
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  if (list.length === 0) throw untranslatable(path, label, 'a condition needs at least one value');
  return list.map((item) => {
    if (typeof item === 'boolean') return String(item);
    if (typeof item !== 'string') throw untranslatable(path, label, 'condition values must be strings');
    return item;
  });
}

function cidrOf(value: string, path: string, label: string): string {
  const family = isIP(value);
  const block = family === 4 ? `${value}/32` : family === 6 ? `${value}/128` : value;
  const parsed = parseCidr(block);
  if (typeof parsed === 'string') throw untranslatable(path, label, `aws:SourceIp ${quote(value)} ${parsed}`);
  return block;
}

function addAttribute(attributes: Record<string, string>, key: string, values: readonly string[], path: string, label: string): void {
  const name = ATTRIBUTE_KEY.exec(key)?.[1] ?? '';
  if (!ATTRIBUTE_KEY_PATTERN.test(name)) throw untranslatable(path, label, `attribute name ${quote(name)} is not a valid Fleetward attribute key`);
  // Several values mean "any of them" in AWS; thingAttributes compares one value per attribute.
  if (values.length !== 1) throw untranslatable(path, label, `StringEquals on ${quote(key)} with several values cannot be translated: split the statement`);
  attributes[name] = values[0] as string;
}
