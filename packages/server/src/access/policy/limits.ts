import { ATTRIBUTE_LIMITS, REGISTRY_NAME_PATTERN } from '../../identity/registry/names.js';

/** Limits of the policy language, each a named value (STYLE: every limit is a named option). */
export const POLICY_LIMITS = {
  /** Serialized document, in UTF-16 code units (what `JSON.parse` sees). */
  maxDocumentLength: 32_768,
  maxStatements: 100,
  maxResourcesPerStatement: 50,
  /** A resource string including its `client/` or `topic/` prefix, before substitution. */
  maxResourceLength: 512,
  /** Levels of a topic pattern, as the broker's default `maxTopicLevels`. */
  maxPatternLevels: 32,
  maxConditionValues: 50,
  maxDescriptionLength: 500,
  maxIssuerLength: 1024,
  /** As the registry's thing attribute values. */
  maxAttributeValueLength: ATTRIBUTE_LIMITS.maxValueLength,
} as const;

/** Statement ids: short registry-like names, so they can be shown and grepped. */
export const SID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** Attribute keys exactly as the registry accepts them, so `${thing.attr.KEY}` can name any of them. */
export const ATTRIBUTE_KEY_PATTERN = new RegExp(REGISTRY_NAME_PATTERN);
