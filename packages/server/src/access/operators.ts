import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../audit/audit-log.js';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { Clock } from '../clock.js';
import { lockForTransaction } from '../store/locks.js';
import type { Store } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import { generateToken, hashToken, isWellFormedToken, newTokenId } from './api-tokens.js';
import { TOKEN_SCOPES, type Role, type TokenScope } from './roles.js';

const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const LAST_USED_RESOLUTION_MS = 60_000;
export const MAX_TOKEN_TTL_DAYS = 365;
export const BOOTSTRAP_OPERATOR = 'bootstrap';

export interface TokenSummary {
  readonly id: string;
  readonly scopes: readonly TokenScope[];
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly revokedAt: string | null;
  readonly lastUsedAt: string | null;
}

export interface Operator {
  readonly name: string;
  readonly role: Role;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly revokedAt: string | null;
  readonly tokens: readonly TokenSummary[];
}

/** A token as handed to its owner: the secret is shown here once and never again. */
export interface IssuedToken {
  readonly id: string;
  readonly token: string;
  readonly scopes: readonly TokenScope[];
  readonly expiresAt: string;
}

/** The authenticated caller of an API request. */
export interface Principal {
  readonly operator: string;
  readonly role: Role;
  readonly tokenId: string;
  readonly scopes: readonly TokenScope[];
}

export interface TokenRequest {
  readonly scopes?: readonly TokenScope[];
  readonly ttlDays?: number;
}

export interface OperatorsDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly defaultTokenTtlDays: number;
}

/** Operator accounts and their API tokens. Every change is audited in the same transaction. */
export class Operators {
  readonly #deps: OperatorsDependencies;

  constructor(deps: OperatorsDependencies) {
    this.#deps = deps;
  }

  async create(request: { name: string; role: Role } & TokenRequest, actor: Actor): Promise<{ operator: Operator; token: IssuedToken }> {
    const name = checkName(request.name);
    const grant = this.#grant(request);
    const token = await this.#deps.store.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('operators').select('id').where('name', '=', name).executeTakeFirst();
      if (existing) throw new FleetwardError('FW_ERR_CONFLICT', `operator ${name} already exists`, { operator: name });
      const id = randomUUID();
      await trx.insertInto('operators').values({ id, name, role: request.role, created_at: this.#now(), created_by: actor.name, revoked_at: null }).execute();
      await this.#deps.audit.recordWithin(trx, [
        { ...actorFields(actor), action: 'operator.create', outcome: 'success', target: `operator:${name}`, details: { role: request.role } },
      ]);
      return this.#insertToken(trx, id, name, grant, actor);
    });
    return { operator: await this.get(name), token };
  }

  /** Creates the one-time bootstrap admin, unless any operator exists; returns its token or null. */
  async bootstrap(ttlHours: number): Promise<IssuedToken | null> {
    const { db, dialect } = this.#deps.store;
    return db.transaction().execute(async (trx) => {
      await lockForTransaction(trx, dialect, 'fleetward:operator-bootstrap');
      const any = await trx.selectFrom('operators').select('id').limit(1).executeTakeFirst();
      if (any) return null;
      const id = randomUUID();
      await trx.insertInto('operators').values({ id, name: BOOTSTRAP_OPERATOR, role: 'admin', created_at: this.#now(), created_by: 'node', revoked_at: null }).execute();
      await this.#deps.audit.recordWithin(trx, [
        { actor: 'node', action: 'operator.create', outcome: 'success', target: `operator:${BOOTSTRAP_OPERATOR}`, details: { role: 'admin', bootstrap: true } },
      ]);
      return this.#insertToken(trx, id, BOOTSTRAP_OPERATOR, { scopes: TOKEN_SCOPES, ttlMs: ttlHours * 3_600_000 }, { name: 'node' });
    });
  }

  async issueToken(name: string, request: TokenRequest, actor: Actor): Promise<IssuedToken> {
    const grant = this.#grant(request);
    return this.#deps.store.db.transaction().execute(async (trx) => {
      const operator = await activeOperator(trx, checkName(name));
      return this.#insertToken(trx, operator.id, operator.name, grant, actor);
    });
  }

  async list(options: { includeRevoked?: boolean } = {}): Promise<Operator[]> {
    const { db } = this.#deps.store;
    let query = db.selectFrom('operators').selectAll().orderBy('name');
    if (options.includeRevoked !== true) query = query.where('revoked_at', 'is', null);
    const operators = await query.execute();
    const tokens = await db.selectFrom('api_tokens').selectAll().orderBy('created_at').execute();
    return operators.map((row) => toOperator(row, tokens.filter((t) => t.operator_id === row.id)));
  }

  async get(name: string): Promise<Operator> {
    const { db } = this.#deps.store;
    const row = await db.selectFrom('operators').selectAll().where('name', '=', checkName(name)).executeTakeFirst();
    if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `operator ${name} does not exist`, { operator: name });
    const tokens = await db.selectFrom('api_tokens').selectAll().where('operator_id', '=', row.id).orderBy('created_at').execute();
    return toOperator(row, tokens);
  }

  /** Revokes an operator and every token it holds. The last active admin cannot be revoked. */
  async revoke(name: string, actor: Actor): Promise<Operator> {
    const { db, dialect } = this.#deps.store;
    await db.transaction().execute(async (trx) => {
      await lockForTransaction(trx, dialect, 'fleetward:operators');
      const operator = await activeOperator(trx, checkName(name));
      if (operator.role === 'admin') {
        const admins = await trx.selectFrom('operators').select('id').where('role', '=', 'admin').where('revoked_at', 'is', null).execute();
        if (admins.length <= 1) throw new FleetwardError('FW_ERR_CONFLICT', `operator ${name} is the last active admin; create another admin first`, { operator: name });
      }
      const now = this.#now();
      await trx.updateTable('operators').set({ revoked_at: now }).where('id', '=', operator.id).execute();
      await trx.updateTable('api_tokens').set({ revoked_at: now }).where('operator_id', '=', operator.id).where('revoked_at', 'is', null).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'operator.revoke', outcome: 'success', target: `operator:${operator.name}` }]);
    });
    return this.get(name);
  }

  async revokeToken(tokenId: string, actor: Actor): Promise<TokenSummary> {
    return this.#deps.store.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('api_tokens').selectAll().where('id', '=', tokenId).executeTakeFirst();
      if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `token ${tokenId} does not exist`, { token: tokenId });
      if (row.revoked_at !== null) throw new FleetwardError('FW_ERR_CONFLICT', `token ${tokenId} is already revoked`, { token: tokenId });
      const now = this.#now();
      await trx.updateTable('api_tokens').set({ revoked_at: now }).where('id', '=', tokenId).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'token.revoke', outcome: 'success', target: `token:${tokenId}` }]);
      return toTokenSummary({ ...row, revoked_at: now });
    });
  }

  /** Resolves a bearer token to its operator, or throws a stable error saying why it is refused. */
  async authenticate(token: string): Promise<Principal> {
    if (!isWellFormedToken(token)) throw new FleetwardError('FW_ERR_TOKEN_INVALID', 'the token is malformed');
    const { db } = this.#deps.store;
    const row = await db
      .selectFrom('api_tokens')
      .innerJoin('operators', 'operators.id', 'api_tokens.operator_id')
      .select(['api_tokens.id as tokenId', 'api_tokens.scopes', 'api_tokens.expires_at', 'api_tokens.revoked_at as tokenRevokedAt', 'api_tokens.last_used_at', 'operators.name', 'operators.role', 'operators.revoked_at as operatorRevokedAt'])
      .where('api_tokens.token_hash', '=', hashToken(token))
      .executeTakeFirst();
    if (!row) throw new FleetwardError('FW_ERR_TOKEN_INVALID', 'the token is not known');
    if (row.tokenRevokedAt !== null || row.operatorRevokedAt !== null) throw new FleetwardError('FW_ERR_TOKEN_REVOKED', 'the token has been revoked', { token: row.tokenId });
    const now = this.#deps.clock.now();
    if (Date.parse(row.expires_at) <= now.getTime()) throw new FleetwardError('FW_ERR_TOKEN_EXPIRED', `the token expired at ${row.expires_at}`, { token: row.tokenId });
    if (row.last_used_at === null || now.getTime() - Date.parse(row.last_used_at) > LAST_USED_RESOLUTION_MS) {
      await db.updateTable('api_tokens').set({ last_used_at: now.toISOString() }).where('id', '=', row.tokenId).execute();
    }
    return { operator: row.name, role: row.role as Role, tokenId: row.tokenId, scopes: parseScopes(row.scopes) };
  }

  async #insertToken(trx: Transaction<Tables>, operatorId: string, operatorName: string, grant: { scopes: readonly TokenScope[]; ttlMs: number }, actor: Actor): Promise<IssuedToken> {
    const { token, hash } = generateToken();
    const id = newTokenId();
    const now = this.#deps.clock.now();
    const expiresAt = new Date(now.getTime() + grant.ttlMs).toISOString();
    const scopes = [...new Set(grant.scopes)];
    await trx
      .insertInto('api_tokens')
      .values({ id, operator_id: operatorId, token_hash: hash, scopes: JSON.stringify(scopes), created_at: now.toISOString(), expires_at: expiresAt, revoked_at: null, last_used_at: null })
      .execute();
    await this.#deps.audit.recordWithin(trx, [
      { ...actorFields(actor), action: 'token.create', outcome: 'success', target: `token:${id}`, details: { operator: operatorName, scopes, expiresAt } },
    ]);
    return { id, token, scopes, expiresAt };
  }

  #grant(request: TokenRequest): { scopes: readonly TokenScope[]; ttlMs: number } {
    const ttlDays = request.ttlDays ?? this.#deps.defaultTokenTtlDays;
    if (!Number.isInteger(ttlDays) || ttlDays < 1 || ttlDays > MAX_TOKEN_TTL_DAYS) {
      throw new FleetwardError('FW_ERR_VALIDATION', `token lifetime must be a whole number of days between 1 and ${MAX_TOKEN_TTL_DAYS}`, { field: 'ttlDays' });
    }
    const scopes = request.scopes ?? ['api'];
    if (scopes.length === 0) throw new FleetwardError('FW_ERR_VALIDATION', 'a token needs at least one scope', { field: 'scopes' });
    return { scopes, ttlMs: ttlDays * 86_400_000 };
  }

  #now(): string {
    return this.#deps.clock.now().toISOString();
  }
}

export function checkName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw new FleetwardError('FW_ERR_VALIDATION', `operator name ${JSON.stringify(name)} is invalid: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`, { field: 'name' });
  }
  return name;
}

async function activeOperator(trx: Transaction<Tables>, name: string): Promise<{ id: string; name: string; role: string }> {
  const row = await trx.selectFrom('operators').select(['id', 'name', 'role', 'revoked_at']).where('name', '=', name).executeTakeFirst();
  if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `operator ${name} does not exist`, { operator: name });
  if (row.revoked_at !== null) throw new FleetwardError('FW_ERR_CONFLICT', `operator ${name} is revoked`, { operator: name });
  return row;
}

function toOperator(row: Tables['operators'], tokens: readonly Tables['api_tokens'][]): Operator {
  return {
    name: row.name,
    role: row.role as Role,
    createdAt: row.created_at,
    createdBy: row.created_by,
    revokedAt: row.revoked_at,
    tokens: tokens.map(toTokenSummary),
  };
}

function toTokenSummary(row: Tables['api_tokens']): TokenSummary {
  return { id: row.id, scopes: parseScopes(row.scopes), createdAt: row.created_at, expiresAt: row.expires_at, revokedAt: row.revoked_at, lastUsedAt: row.last_used_at };
}

function parseScopes(text: string): TokenScope[] {
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? parsed.filter((s): s is TokenScope => (TOKEN_SCOPES as readonly unknown[]).includes(s)) : [];
}
