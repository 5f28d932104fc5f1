import { createHash } from 'node:crypto';
import type { Transaction } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import { DEFAULT_DEVICE_POLICY_NAME, parsePolicyJson, type AttachmentTarget, type PolicyDocument } from '../policy/index.js';
import type { Database } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';

/** A stored policy with the document of its default version (the one in force). */
export interface StoredPolicy {
  readonly name: string;
  readonly defaultVersion: number;
  readonly latestVersion: number;
  readonly document: PolicyDocument;
  /** How many things, groups and certificates it is attached to. */
  readonly attachments: number;
  /** True for the default device policy: things with no attached policy get it. */
  readonly isDefaultDevicePolicy: boolean;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly updatedAt: string;
}

/** One version of a policy. Versions never change; updating a policy adds one. */
export interface StoredPolicyVersion {
  readonly policy: string;
  readonly version: number;
  readonly isDefault: boolean;
  readonly document: PolicyDocument;
  readonly createdAt: string;
  readonly createdBy: string;
}

export interface PolicyAttachment {
  readonly policy: string;
  readonly target: AttachmentTarget;
  readonly createdAt: string;
  readonly createdBy: string;
}

/** Limits of the policy store, each a named value (STYLE: limits are options with units). */
export const POLICY_STORE_LIMITS = {
  /** Policies attached directly to one thing, group or certificate (AWS IoT allows 10 too). */
  maxPoliciesPerTarget: 10,
  /** Parsed documents kept in memory; versions are immutable, so the cache is keyed by their text. */
  documentCacheEntries: 512,
} as const;

/** Names starting with this are Fleetward's own (the default device, claim and quarantine policies). */
export const RESERVED_POLICY_PREFIX = 'fleetward-';

type Reader = Database | Transaction<Tables>;

/**
 * Parsed documents by their stored text. A stored version is valid by construction (it was parsed
 * before it was written); parsing again on every connect would cost more than the lookup.
 */
export class DocumentCache {
  readonly #entries = new Map<string, PolicyDocument>();

  parse(text: string): PolicyDocument {
    const cached = this.#entries.get(text);
    if (cached !== undefined) return cached;
    const document = parsePolicyJson(text);
    if (this.#entries.size >= POLICY_STORE_LIMITS.documentCacheEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(text, document);
    return document;
  }
}

/** SHA-256 of a stored document, for the audit trail (documents themselves can exceed its detail limit). */
export function documentHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function policyNotFound(name: string): FleetwardError {
  return new FleetwardError('FW_ERR_NOT_FOUND', `policy ${name} does not exist`, { policy: name });
}

export async function policyRow(db: Reader, name: string): Promise<Tables['policies']> {
  const row = await db.selectFrom('policies').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw policyNotFound(name);
  return row;
}

export async function versionText(db: Reader, name: string, version: number): Promise<Tables['policy_versions']> {
  const row = await db.selectFrom('policy_versions').selectAll().where('policy', '=', name).where('version', '=', version).executeTakeFirst();
  if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `policy ${name} has no version ${version}`, { policy: name, version });
  return row;
}

export function toStoredPolicy(row: Tables['policies'], document: PolicyDocument, attachments: number): StoredPolicy {
  return {
    name: row.name,
    defaultVersion: row.default_version,
    latestVersion: row.latest_version,
    document,
    attachments,
    isDefaultDevicePolicy: row.name === DEFAULT_DEVICE_POLICY_NAME,
    createdAt: row.created_at,
    createdBy: row.created_by,
    updatedAt: row.updated_at,
  };
}

export function toAttachment(row: Pick<Tables['policy_attachments'], 'policy' | 'target_kind' | 'target_name' | 'created_at' | 'created_by'>): PolicyAttachment {
  return { policy: row.policy, target: { kind: row.target_kind as AttachmentTarget['kind'], name: row.target_name }, createdAt: row.created_at, createdBy: row.created_by };
}

/** `thing:sensor-1`, `group:berlin`, `certificate:3f09...`: how the audit trail names a target. */
export function targetLabel(target: AttachmentTarget): string {
  return `${target.kind}:${target.name}`;
}
