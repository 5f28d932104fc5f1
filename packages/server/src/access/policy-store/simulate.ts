import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { FleetwardError } from '@fleetward/protocol';
import type { Store } from '../../store/store.js';
import { describeDecision, explain, POLICY_ACTIONS, POLICY_LIMITS, type AttachmentTarget, type Decision, type PolicyAction, type StatementRef, type StatementTrace } from '../policy/index.js';
import type { PolicyStore } from './policy-store.js';

export interface SimulationRequest {
  readonly thing: string;
  readonly action: string;
  /** The client id for mqtt:connect, the topic filter for mqtt:subscribe, the topic name otherwise (no `topic/` prefix). */
  readonly resource: string;
  readonly sourceAddress?: string;
  /** The certificate it connects with; default: the thing's newest active device certificate, if any. */
  readonly certificate?: string;
}

/** A deciding statement, with the version of its policy. */
export interface DecidingStatement extends StatementRef {
  readonly version: number;
  readonly effect: 'allow' | 'deny';
}

export interface Simulation {
  readonly decision: 'allow' | 'deny';
  readonly reason: Decision['reason'];
  /** One line: which statement decided, or why nothing did. */
  readonly description: string;
  /** The statement that decided (the first matching deny, or the allow); null for a default deny. */
  readonly statement: DecidingStatement | null;
  /** For a subscribe filter no single allow covers: the allows that cover it together. */
  readonly together: readonly DecidingStatement[];
  readonly thing: { readonly name: string; readonly state: string };
  readonly certificate: string | null;
  readonly policies: readonly { readonly name: string; readonly version: number; readonly via: AttachmentTarget | null }[];
  /** Every statement naming the action, in evaluation order, with how it relates to the request. */
  readonly statements: readonly (StatementTrace & { readonly version: number })[];
}

/**
 * `fleetward policies simulate`: compiles the thing's effective policies with the gateway's compiler
 * and decides one request. The gateway gives claim certificates and quarantined things fixed policies
 * whatever is attached; `thing.state` shows when that applies.
 */
export async function simulatePolicy(deps: { readonly store: Store; readonly policies: PolicyStore }, request: SimulationRequest): Promise<Simulation> {
  const action = checkedAction(request.action);
  if (request.resource.length === 0 || request.resource.length > POLICY_LIMITS.maxResourceLength) {
    throw new FleetwardError('FW_ERR_VALIDATION', `resource must be 1-${POLICY_LIMITS.maxResourceLength} characters`, { field: 'resource' });
  }
  if (request.sourceAddress !== undefined && isIP(request.sourceAddress) === 0) {
    throw new FleetwardError('FW_ERR_VALIDATION', `source address ${JSON.stringify(request.sourceAddress.slice(0, 64))} is not an IPv4 or IPv6 address`, { field: 'source' });
  }
  const certificate = await certificateOf(deps.store, request.thing, request.certificate);
  const effective = await deps.policies.effectiveFor(request.thing, certificate === null ? {} : { certificateSerial: certificate.serial });
  const facts = {
    thing: effective.thing,
    ...(certificate !== null && { cert: { cn: certificate.cn, serial: certificate.serial, issuer: certificate.issuer } }),
    ...(request.sourceAddress !== undefined && { sourceAddress: request.sourceAddress }),
    ...(action === 'mqtt:connect' && { clientId: request.resource }),
  };
  const explanation = explain(effective.policies, facts, action, request.resource);
  const versions = new Map(effective.policies.map((p) => [p.name, p.version]));
  const traces = explanation.statements.map((s) => ({ ...s, version: versions.get(s.statement.policy) ?? 0 }));
  const deciding = (ref: StatementRef): DecidingStatement => ({ ...ref, version: versions.get(ref.policy) ?? 0, effect: traces.find((t) => t.statement.policy === ref.policy && t.statement.index === ref.index)?.effect ?? 'allow' });
  const decision = explanation.decision;
  return {
    decision: decision.allowed ? 'allow' : 'deny',
    reason: decision.reason,
    description: describeDecision(decision),
    statement: decision.reason === 'allowed' || decision.reason === 'denied' ? deciding(decision.statement) : null,
    together: decision.reason === 'allowed' ? (decision.together ?? []).map(deciding) : [],
    thing: { name: effective.thing.name, state: effective.thing.state },
    certificate: certificate?.serial ?? null,
    policies: effective.policies.map((p) => ({ name: p.name, version: p.version, via: p.via })),
    statements: traces,
  };
}

function checkedAction(action: string): PolicyAction {
  if (!(POLICY_ACTIONS as readonly string[]).includes(action)) throw new FleetwardError('FW_ERR_VALIDATION', `unknown action ${JSON.stringify(action.slice(0, 64))}: use ${POLICY_ACTIONS.join(', ')}`, { field: 'action' });
  return action as PolicyAction;
}

/** The certificate facts the gateway would see: the named certificate (it must be the thing's), or its newest active one. */
async function certificateOf(store: Store, thing: string, serial: string | undefined): Promise<{ serial: string; cn: string; issuer: string } | null> {
  let select = store.db
    .selectFrom('certificates')
    .innerJoin('things', 'things.id', 'certificates.thing_id')
    .select(['certificates.serial', 'certificates.subject_cn', 'certificates.pem', 'things.name as thing'])
    .where('certificates.kind', '=', 'device');
  select = serial === undefined ? select.where('things.name', '=', thing).where('certificates.status', '=', 'active') : select.where('certificates.serial', '=', serial.toLowerCase());
  const row = await select.orderBy('certificates.not_before', 'desc').orderBy('certificates.serial', 'desc').limit(1).executeTakeFirst();
  if (row === undefined) {
    if (serial === undefined) return null;
    throw new FleetwardError('FW_ERR_NOT_FOUND', `device certificate ${serial} does not exist`, { serial });
  }
  if (row.thing !== thing) throw new FleetwardError('FW_ERR_VALIDATION', `certificate ${row.serial} belongs to another thing`, { field: 'certificate' });
  // The issuer as the gateway renders it (device-identity.ts), so certIssuer conditions compare alike.
  return { serial: row.serial, cn: row.subject_cn, issuer: new X509Certificate(row.pem).issuer.split('\n').join(', ') };
}
