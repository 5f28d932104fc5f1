import type { Role } from '../access/roles.js';

/** Data classes, least to most protected. A reader sees a field only when its clearance is at least the field's class. */
export const CLASSIFICATIONS = ['public', 'internal', 'personal', 'sensitive', 'secret'] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];

export function isClassification(value: unknown): value is Classification {
  return typeof value === 'string' && (CLASSIFICATIONS as readonly string[]).includes(value);
}

const RANKS: Readonly<Record<Classification, number>> = { public: 0, internal: 1, personal: 2, sensitive: 3, secret: 4 };

export function classRank(value: Classification): number {
  return RANKS[value];
}

/** Classes whose every read is audited. */
export function isAuditedClass(value: Classification): boolean {
  return value === 'personal' || value === 'sensitive';
}

/**
 * Who may read which data: the highest class each operator role may see, and the roles that may
 * detokenize (a grant of its own, held by no role unless given). `secret` is never returned in
 * clear by a query: such fields are dropped, encrypted to a recipient key or tokenized at ingest.
 */
export interface DataGrants {
  readonly clearance: Readonly<Record<Role, Classification>>;
  readonly detokenize: readonly Role[];
}

export const DEFAULT_DATA_GRANTS: DataGrants = {
  clearance: { admin: 'sensitive', operator: 'personal', auditor: 'internal', viewer: 'public' },
  detokenize: ['admin'],
};

export function clearanceAllows(grants: DataGrants, role: Role, value: Classification): boolean {
  return value !== 'secret' && classRank(value) <= classRank(grants.clearance[role]);
}
