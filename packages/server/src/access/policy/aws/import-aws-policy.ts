import { FleetwardError } from '@fleetward/protocol';
import { SID_PATTERN } from '../limits.js';
import { parsePolicyDocument } from '../parse-policy.js';
import { parseResource } from '../resource-template.js';
import type { Conditions, PolicyAction, PolicyDocument, Statement } from '../types.js';
import { translateActions } from './aws-actions.js';
import { translateConditions } from './aws-conditions.js';
import { readAwsDocument, type AwsStatement } from './aws-document.js';
import { ArnScope, readAwsResource, translateClient, translateTopic, translateTopicFilter, type AwsResource } from './aws-resources.js';
import { AWS_THING_NAME } from './aws-variables.js';
import { untranslatable } from './untranslatable.js';

export interface AwsImportOptions {
  /** The AWS region and account the document's ARNs must name (default: whatever they consistently name). */
  readonly region?: string;
  readonly account?: string;
  /** Expand `iot:*` and `*` to the five MQTT actions instead of refusing them. */
  readonly expandWildcardActions?: boolean;
  readonly description?: string;
}

/** Fleetward statements group actions by the resource kind AWS matches them against. */
const GROUPS = [
  { suffix: 'connect', actions: ['mqtt:connect'], kind: 'client', translate: translateClient },
  { suffix: 'subscribe', actions: ['mqtt:subscribe'], kind: 'topicfilter', translate: translateTopicFilter },
  { suffix: 'topics', actions: ['mqtt:publish', 'mqtt:receive', 'mqtt:retain'], kind: 'topic', translate: translateTopic },
] as const;

/**
 * Translates an AWS IoT policy document (Version 2012-10-17) into a Fleetward policy document, or
 * refuses with FW_ERR_VALIDATION naming the statement and the JSON path of what has no exact
 * equivalent (docs/policies.md "Importing AWS IoT policies"). Pure: no AWS call, no store.
 */
export function importAwsIotPolicy(document: unknown, options: AwsImportOptions = {}): PolicyDocument {
  const statements = readAwsDocument(document);
  const scope = new ArnScope(options.region, options.account);
  const resources = new Map(statements.map((s) => [s, s.resources.map((r) => readAwsResource(r.value, r.path, s.label, scope))]));
  const actions = new Map(statements.map((s) => [s, translateActions(s, options.expandWildcardActions === true)]));
  const clientIdIsThingName = clientIdBound(statements, actions, resources);
  const translated = statements.flatMap((s) => translateStatement(s, actions.get(s) ?? new Set(), resources.get(s) ?? [], clientIdIsThingName));
  if (translated.length === 0) throw untranslatable('/Statement', null, 'no statement grants or denies an MQTT action on a matching resource');
  try {
    return parsePolicyDocument({ version: '2026-11', ...(options.description !== undefined && { description: options.description }), statements: uniqueSids(translated) });
  } catch (error) {
    if (error instanceof FleetwardError) throw untranslatable(typeof error.details.path === 'string' ? error.details.path : '', null, `the translated policy is not valid: ${error.message}`);
    throw error;
  }
}

function translateStatement(statement: AwsStatement, actions: ReadonlySet<PolicyAction>, resources: readonly AwsResource[], clientIdIsThingName: boolean): Statement[] {
  const { conditions, requiresAttachedThing } = translateConditions(statement);
  const effect = statement.effect === 'Allow' ? 'allow' : 'deny';
  const context = { label: statement.label, clientIdIsThingName };
  const parts = GROUPS.flatMap((group) => {
    const groupActions = group.actions.filter((a) => actions.has(a));
    // A resource of another kind never matches these actions in AWS either: leaving it out is exact.
    const groupResources = resources.filter((r) => r.kind === 'all' || r.kind === group.kind);
    if (groupActions.length === 0 || groupResources.length === 0) return [];
    const translated = [...new Set(groupResources.map((r) => checked(group.translate(r, context), r, statement)))];
    return [{ suffix: group.suffix, actions: groupActions, resources: translated }];
  });
  if (requiresAttachedThing && !parts.every((p) => p.resources.every((r) => r.includes('${thing.name}')))) {
    throw untranslatable(`${statement.path}/Condition`, statement.label, `iot:Connection.Thing.IsAttached translates only when every resource names ${AWS_THING_NAME}`);
  }
  return parts.map((part) => statementOf(statement, part, parts.length > 1, effect, conditions));
}

function statementOf(
  statement: AwsStatement,
  part: { readonly suffix: string; readonly actions: readonly PolicyAction[]; readonly resources: readonly string[] },
  split: boolean,
  effect: 'allow' | 'deny',
  conditions: Conditions | undefined,
): Statement {
  // Room for a `-subscribe` suffix within the 64 characters of a sid.
  const base = statement.sid !== undefined && SID_PATTERN.test(statement.sid) ? statement.sid.slice(0, 48) : `aws-${statement.index}`;
  const sid = split ? `${base}-${part.suffix}` : base;
  return { sid, effect, actions: part.actions, resources: part.resources, ...(conditions !== undefined && { conditions }) };
}

/** Validates a translated resource where it came from, so the error points into the AWS document. */
function checked(resource: string, source: AwsResource, statement: AwsStatement): string {
  try {
    parseResource(resource, source.path);
  } catch (error) {
    if (error instanceof FleetwardError) throw untranslatable(source.path, statement.label, `translates to ${resource}, which is not valid: ${error.message}`);
    throw error;
  }
  return resource;
}

/**
 * `${iot:ClientId}` equals the thing name when the document lets a thing connect only as its own
 * name: at least one Allow of iot:Connect, and every Allow of iot:Connect names exactly
 * `client/${iot:Connection.Thing.ThingName}`. (Another policy attached to the same thing could still
 * allow other client ids; the analyzer reports those as foreign-client-id.)
 */
function clientIdBound(statements: readonly AwsStatement[], actions: ReadonlyMap<AwsStatement, ReadonlySet<PolicyAction>>, resources: ReadonlyMap<AwsStatement, readonly AwsResource[]>): boolean {
  const connects = statements.filter((s) => s.effect === 'Allow' && actions.get(s)?.has('mqtt:connect') === true);
  const clientResources = connects.flatMap((s) => (resources.get(s) ?? []).filter((r) => r.kind === 'all' || r.kind === 'client'));
  return clientResources.length > 0 && clientResources.every((r) => r.kind === 'client' && r.name === AWS_THING_NAME);
}

/** AWS Sids need not be unique or valid here; Fleetward's must, so repeats get the statement index. */
function uniqueSids(statements: readonly Statement[]): Statement[] {
  const seen = new Set<string>();
  return statements.map((statement, i) => {
    let sid = statement.sid as string;
    if (seen.has(sid)) sid = `${sid}-${i}`.slice(0, 64);
    seen.add(sid);
    return { ...statement, sid };
  });
}
