/**
 * Operator roles and what each may do. Least privilege: a viewer reads the fleet, an auditor
 * reads everything including the audit trail but changes nothing, an operator runs the fleet but
 * does not manage accounts, an admin does everything.
 */
export const ROLES = ['admin', 'operator', 'auditor', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = ['fleet:read', 'fleet:write', 'operators:read', 'operators:write', 'audit:read', 'config:read', 'ca:write'] as const;
export type Permission = (typeof PERMISSIONS)[number];

const GRANTS: Readonly<Record<Role, readonly Permission[]>> = {
  admin: PERMISSIONS,
  operator: ['fleet:read', 'fleet:write'],
  auditor: ['fleet:read', 'operators:read', 'audit:read', 'config:read'],
  viewer: ['fleet:read'],
};

export function roleAllows(role: Role, permission: Permission): boolean {
  return GRANTS[role].includes(permission);
}

export function permissionsOf(role: Role): readonly Permission[] {
  return GRANTS[role];
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/**
 * What a token may be used for, on top of its operator's role: `api` for the operator API,
 * `metrics` for scraping /metrics (give a Prometheus server a token with only this scope).
 */
export const TOKEN_SCOPES = ['api', 'metrics'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];
