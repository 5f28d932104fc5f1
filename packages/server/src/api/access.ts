import type { FastifyRequest } from 'fastify';
import { FleetwardError, type ErrorCode } from '@fleetward/protocol';
import type { FailureThrottle } from '../access/auth-throttle.js';
import type { Operators, Principal } from '../access/operators.js';
import { roleAllows, type Permission, type TokenScope } from '../access/roles.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { NodeMetrics } from '../observability/metrics.js';
import type { Api } from './types.js';

/**
 * Who may call a route. Every route declares one; a route without it makes the API refuse to
 * start (fail closed), so a forgotten check cannot ship.
 */
export type RouteAccess =
  | { readonly kind: 'public' }
  /** A device route: it authenticates the device itself (client certificate or enrollment credential). */
  | { readonly kind: 'device' }
  /** Any operator token with the `api` scope. */
  | { readonly kind: 'authenticated' }
  | { readonly kind: 'permission'; readonly permission: Permission }
  /** A token with the `metrics` scope. */
  | { readonly kind: 'scope'; readonly scope: TokenScope };

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface AccessDependencies {
  readonly operators: Operators;
  readonly audit: AuditLog;
  readonly throttle: FailureThrottle;
  readonly metrics: NodeMetrics;
  readonly clock: Clock;
}

const AUTH_FAILURES: ReadonlySet<ErrorCode> = new Set(['FW_ERR_UNAUTHENTICATED', 'FW_ERR_TOKEN_INVALID', 'FW_ERR_TOKEN_EXPIRED', 'FW_ERR_TOKEN_REVOKED']);

/** Authenticates and authorizes every request before its body is even read. */
export function registerAccessControl(app: Api, deps: AccessDependencies): void {
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route) => {
    if (route.config?.access === undefined) throw new Error(`route ${String(route.method)} ${route.url} declares no access rule`);
  });
  app.addHook('onRequest', async (request, reply) => {
    const access = request.routeOptions.config.access;
    // Unknown routes reach the not-found handler, which reveals nothing.
    if (access === undefined || access.kind === 'public' || access.kind === 'device') return;
    const nowMs = deps.clock.now().getTime();
    const blockedUntil = deps.throttle.blockedUntil(request.ip, nowMs);
    if (blockedUntil !== null) {
      deps.metrics.authThrottled.inc();
      const retryAfter = Math.max(1, Math.ceil((blockedUntil - nowMs) / 1000));
      void reply.header('retry-after', String(retryAfter));
      throw new FleetwardError('FW_ERR_AUTH_THROTTLED', `too many failed authentications from ${request.ip}; retry in ${retryAfter} s`, { retryAfter });
    }
    const principal = await authenticate(request, deps, nowMs, reply);
    const missing = missingGrant(principal, access);
    if (missing !== null) {
      await deps.audit.record({
        actor: `operator:${principal.operator}`,
        action: 'access.denied',
        outcome: 'denied',
        source: request.ip,
        details: { needed: missing, role: principal.role, route: routeOf(request) },
      });
      throw new FleetwardError('FW_ERR_FORBIDDEN', `role ${principal.role} with this token may not do this: it needs ${missing}`, { needed: missing });
    }
    request.principal = principal;
  });
}

async function authenticate(request: FastifyRequest, deps: AccessDependencies, nowMs: number, reply: { header(name: string, value: string): unknown }): Promise<Principal> {
  try {
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer ([^\s]+)$/i.exec(header);
    if (!match) throw new FleetwardError('FW_ERR_UNAUTHENTICATED', 'an operator token is required: send "Authorization: Bearer <token>"');
    return await deps.operators.authenticate(match[1] as string);
  } catch (error) {
    if (!(error instanceof FleetwardError) || !AUTH_FAILURES.has(error.code)) throw error;
    deps.metrics.authFailures.inc({ reason: error.code });
    const { newlyBlocked } = deps.throttle.recordFailure(request.ip, nowMs);
    const route = routeOf(request);
    await deps.audit.record({ actor: 'anonymous', action: 'auth.failure', outcome: 'denied', source: request.ip, details: { reason: error.code, route } });
    if (newlyBlocked) await deps.audit.record({ actor: 'anonymous', action: 'auth.throttled', outcome: 'denied', source: request.ip, details: { route } });
    reply.header('www-authenticate', 'Bearer realm="fleetward"');
    throw error;
  }
}

/** What the principal lacks for this route (a permission or token scope), or null if nothing. */
function missingGrant(principal: Principal, access: Exclude<RouteAccess, { kind: 'public' } | { kind: 'device' }>): string | null {
  switch (access.kind) {
    case 'scope':
      return principal.scopes.includes(access.scope) ? null : `token scope ${access.scope}`;
    case 'authenticated':
      return principal.scopes.includes('api') ? null : 'token scope api';
    case 'permission':
      if (!principal.scopes.includes('api')) return 'token scope api';
      return roleAllows(principal.role, access.permission) ? null : `permission ${access.permission}`;
  }
}

function routeOf(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? request.url}`;
}
