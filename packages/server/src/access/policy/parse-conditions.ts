import { parseCidr } from './cidr.js';
import { invalid, quote } from './invalid.js';
import { checkFields, checkUnique, escapePointer, expectArray, expectObject, expectString } from './json-guards.js';
import { ATTRIBUTE_KEY_PATTERN, POLICY_LIMITS } from './limits.js';
import type { Conditions } from './types.js';

const CONDITION_FIELDS = ['sourceAddress', 'thingAttributes', 'certIssuer'] as const;

/** Parses a statement's `conditions` block. Conditions hold no variables: they compare facts to constants. */
export function parseConditions(value: unknown, path: string): Conditions {
  const object = expectObject(value, path, 'conditions');
  checkFields(object, path, [], CONDITION_FIELDS);
  if (Object.keys(object).length === 0) throw invalid(path, 'conditions must name at least one condition (or be left out)');
  return {
    ...(object.sourceAddress !== undefined && { sourceAddress: parseSourceAddress(object.sourceAddress, `${path}/sourceAddress`) }),
    ...(object.thingAttributes !== undefined && { thingAttributes: parseThingAttributes(object.thingAttributes, `${path}/thingAttributes`) }),
    ...(object.certIssuer !== undefined && { certIssuer: parseIssuers(object.certIssuer, `${path}/certIssuer`) }),
  };
}

function parseSourceAddress(value: unknown, path: string): readonly string[] {
  const blocks = expectArray(value, path, 'sourceAddress', POLICY_LIMITS.maxConditionValues).map((item, i) => {
    const block = expectString(item, `${path}/${i}`, 'a CIDR block', 64);
    const parsed = parseCidr(block);
    if (typeof parsed === 'string') throw invalid(`${path}/${i}`, `${quote(block)} ${parsed}`);
    return block;
  });
  checkUnique(blocks, path, 'block');
  return blocks;
}

function parseThingAttributes(value: unknown, path: string): Readonly<Record<string, string>> {
  const object = expectObject(value, path, 'thingAttributes');
  const entries = Object.entries(object);
  if (entries.length === 0) throw invalid(path, 'thingAttributes must name at least one attribute');
  if (entries.length > POLICY_LIMITS.maxConditionValues) throw invalid(path, `thingAttributes names at most ${POLICY_LIMITS.maxConditionValues} attributes`, { limit: POLICY_LIMITS.maxConditionValues });
  // Keys are registry attribute keys, which start with a letter or digit: `__proto__` cannot be one.
  return Object.fromEntries(
    entries.map(([key, item]) => {
      const itemPath = `${path}/${escapePointer(key)}`;
      if (!ATTRIBUTE_KEY_PATTERN.test(key)) throw invalid(itemPath, `${quote(key)} is not a valid attribute key`);
      return [key, expectString(item, itemPath, 'an attribute value', POLICY_LIMITS.maxAttributeValueLength)];
    }),
  );
}

function parseIssuers(value: unknown, path: string): readonly string[] {
  const issuers = expectArray(value, path, 'certIssuer', POLICY_LIMITS.maxConditionValues).map((item, i) => {
    const issuer = expectString(item, `${path}/${i}`, 'an issuer name', POLICY_LIMITS.maxIssuerLength);
    if (issuer.length === 0) throw invalid(`${path}/${i}`, 'an issuer name must not be empty');
    return issuer;
  });
  checkUnique(issuers, path, 'issuer');
  return issuers;
}
