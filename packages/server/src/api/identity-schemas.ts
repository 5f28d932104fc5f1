import { ISSUE_PATHS, KEY_STORAGES, REVOCATION_REASONS } from '../identity/certificate-repository.js';
import { THING_STATES } from '../identity/registry/lifecycle.js';
import { ATTRIBUTE_LIMITS, REGISTRY_NAME_PATTERN, THING_NAME_PATTERN } from '../identity/registry/names.js';
import { array, boolean, integer, nullable, object, oneOf, record, string, unknown } from './json-schema.js';
import { Timestamp } from './schemas.js';

export const ThingNameSchema = string({ pattern: THING_NAME_PATTERN, description: '1-128 of A-Z a-z 0-9 : _ -' });
export const RegistryNameSchema = string({ pattern: REGISTRY_NAME_PATTERN });
export const ThingStateSchema = oneOf(THING_STATES);
export const KeyStorageSchema = oneOf(KEY_STORAGES, { description: 'Where the device keeps its private key, as it declares at enrollment' });
export const RevocationReasonSchema = oneOf(Object.keys(REVOCATION_REASONS) as (keyof typeof REVOCATION_REASONS)[]);
export const SerialSchema = string({ pattern: '^[0-9a-fA-F]{2,40}$' });
export const AttributesSchema = record(string({ maxLength: ATTRIBUTE_LIMITS.maxValueLength }));
/** Attribute changes: a value sets, null removes. */
export const AttributeChangesSchema = record(nullable(string({ maxLength: ATTRIBUTE_LIMITS.maxValueLength })));
/** Evidence of where the device key lives (e.g. a TPM quote), as the device declares it. */
export const AttestationSchema = record(unknown(), { maxProperties: 32 });

export const Thing = object({
  name: string(),
  type: nullable(string()),
  state: ThingStateSchema,
  attributes: record(string()),
  groups: array(string()),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  stateChangedAt: Timestamp,
});

export const ThingType = object({ name: string(), description: string(), requireHardwareKey: boolean(), createdAt: Timestamp, updatedAt: Timestamp });

export const Group = object({
  name: string(),
  parent: nullable(string()),
  path: array(string()),
  children: array(string()),
  description: string(),
  memberCount: integer(),
  createdAt: Timestamp,
});

export const CertificateInfo = object({
  serial: string(),
  caId: string(),
  thing: nullable(string()),
  kind: oneOf(['device', 'claim'] as const),
  template: nullable(string()),
  subject: string(),
  keyFingerprint: string({ description: 'SHA-256 of the SubjectPublicKeyInfo' }),
  keyAlgorithm: string(),
  keyStorage: KeyStorageSchema,
  attestation: nullable(record(unknown())),
  issuedVia: oneOf(ISSUE_PATHS),
  issuedBy: string(),
  notBefore: Timestamp,
  notAfter: Timestamp,
  status: oneOf(['active', 'revoked'] as const),
  revokedAt: nullable(Timestamp),
  revocationReason: nullable(RevocationReasonSchema),
  mustRotate: boolean(),
  replaces: nullable(string()),
  lastUsedAt: nullable(Timestamp),
  pem: string(),
});

export const IssuedCertificate = object({
  serial: string(),
  subject: string(),
  certificatePem: string(),
  chainPem: string({ description: 'Issuing CA, then root' }),
  notBefore: Timestamp,
  notAfter: Timestamp,
});

export const PageQuery = {
  after: string({ maxLength: 200 }),
  limit: integer({ minimum: 1, maximum: 500, default: 100 }),
};
