import { FleetwardError } from '@fleetward/protocol';

declare const brand: unique symbol;
/** A validated thing name: 1–128 of `A-Z a-z 0-9 : _ -`. */
export type ThingName = string & { readonly [brand]: 'ThingName' };

const THING_NAME = /^[A-Za-z0-9:_-]{1,128}$/;
/** Thing types, groups, attribute keys and templates share one shape. */
const REGISTRY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export function isThingName(value: string): value is ThingName {
  return THING_NAME.test(value);
}

export function thingName(value: string): ThingName {
  if (!isThingName(value)) {
    throw new FleetwardError('FW_ERR_VALIDATION', `thing name ${JSON.stringify(value.slice(0, 140))} is invalid: use 1-128 of A-Z, a-z, 0-9, ':', '_', '-'`, { field: 'name' });
  }
  return value;
}

export function registryName(value: string, what: 'thing type' | 'group' | 'attribute key' | 'template' | 'policy'): string {
  if (!REGISTRY_NAME.test(value)) {
    throw new FleetwardError('FW_ERR_VALIDATION', `${what} name ${JSON.stringify(value.slice(0, 140))} is invalid: use 1-128 of A-Z, a-z, 0-9, '_', '.', ':', '-', starting with a letter or digit`, { field: what });
  }
  return value;
}

export const REGISTRY_NAME_PATTERN = REGISTRY_NAME.source;
export const THING_NAME_PATTERN = THING_NAME.source;

/** Limits on attributes, like every limit a named value (STYLE: limits are options with units). */
export const ATTRIBUTE_LIMITS = { maxPerThing: 50, maxValueLength: 800 } as const;

export type Attributes = Readonly<Record<string, string>>;

export function checkAttributes(attributes: Readonly<Record<string, unknown>>): Attributes {
  const entries = Object.entries(attributes);
  if (entries.length > ATTRIBUTE_LIMITS.maxPerThing) {
    throw new FleetwardError('FW_ERR_VALIDATION', `a thing holds at most ${ATTRIBUTE_LIMITS.maxPerThing} attributes`, { field: 'attributes' });
  }
  for (const [key, value] of entries) {
    registryName(key, 'attribute key');
    if (typeof value !== 'string' || value.length > ATTRIBUTE_LIMITS.maxValueLength || /\p{Cc}/u.test(value)) {
      throw new FleetwardError('FW_ERR_VALIDATION', `attribute ${key} must be text of at most ${ATTRIBUTE_LIMITS.maxValueLength} printable characters`, { field: `attributes.${key}` });
    }
  }
  return Object.freeze(Object.fromEntries(entries)) as Attributes;
}
