import { FleetwardError } from '@fleetward/protocol';
import { invalid, quote } from './invalid.js';
import { checkFields, checkUnique, expectArray, expectObject, expectString } from './json-guards.js';
import { POLICY_LIMITS, SID_PATTERN } from './limits.js';
import { parseConditions } from './parse-conditions.js';
import { parseResource, type ResourceTemplate } from './resource-template.js';
import { POLICY_ACTIONS, POLICY_VERSIONS, type Effect, type PolicyAction, type PolicyDocument, type PolicyVersion, type Statement } from './types.js';

/** Parses policy JSON text (an API body, a file, a CLI argument) into a validated, frozen document. */
export function parsePolicyJson(text: string): PolicyDocument {
  if (text.length > POLICY_LIMITS.maxDocumentLength) {
    throw invalid('', `a policy document is at most ${POLICY_LIMITS.maxDocumentLength} characters`, { limit: POLICY_LIMITS.maxDocumentLength });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new FleetwardError('FW_ERR_VALIDATION', `a policy document must be JSON: ${error instanceof Error ? error.message : 'unreadable'}`, { path: '' });
  }
  return parsePolicyDocument(value);
}

/**
 * Validates a JSON value as a policy document: unknown fields, actions and variables are refused,
 * resources and patterns must be well-formed, every limit holds. Every error is FW_ERR_VALIDATION
 * with `details.path` pointing at the offending value. The result is canonical (see serialize.ts).
 */
export function parsePolicyDocument(value: unknown): PolicyDocument {
  const object = expectObject(value, '', 'a policy document');
  checkFields(object, '', ['version', 'statements'], ['description']);
  const version = parseVersion(object.version);
  const description = object.description === undefined ? undefined : expectString(object.description, '/description', 'description', POLICY_LIMITS.maxDescriptionLength);
  const statements = expectArray(object.statements, '/statements', 'statements', POLICY_LIMITS.maxStatements).map((s, i) => parseStatement(s, `/statements/${i}`));
  const sids = statements.flatMap((s, i) => (s.sid === undefined ? [] : [[s.sid, i] as const]));
  checkUniqueSids(sids);
  return deepFreeze({ version, ...(description !== undefined && { description }), statements });
}

function parseVersion(value: unknown): PolicyVersion {
  if (typeof value !== 'string' || !(POLICY_VERSIONS as readonly string[]).includes(value)) {
    throw invalid('/version', `unsupported policy language version ${quote(value)}: this version of Fleetward reads ${POLICY_VERSIONS.join(', ')}`);
  }
  return value as PolicyVersion;
}

function parseStatement(value: unknown, path: string): Statement {
  const object = expectObject(value, path, 'a statement');
  checkFields(object, path, ['effect', 'actions', 'resources'], ['sid', 'conditions']);
  const sid = object.sid === undefined ? undefined : parseSid(object.sid, `${path}/sid`);
  const effect = parseEffect(object.effect, `${path}/effect`);
  const actions = parseActions(object.actions, `${path}/actions`);
  const resources = parseResources(object.resources, `${path}/resources`);
  checkKindsMatch(actions, resources, path);
  const conditions = object.conditions === undefined ? undefined : parseConditions(object.conditions, `${path}/conditions`);
  return { ...(sid !== undefined && { sid }), effect, actions, resources: resources.map((r) => r.text), ...(conditions !== undefined && { conditions }) };
}

function parseSid(value: unknown, path: string): string {
  const sid = expectString(value, path, 'sid', 64);
  if (!SID_PATTERN.test(sid)) throw invalid(path, `sid ${quote(sid)} must be 1-64 of A-Z, a-z, 0-9, '_', '.', ':', '-', starting with a letter or digit`);
  return sid;
}

function parseEffect(value: unknown, path: string): Effect {
  if (value !== 'allow' && value !== 'deny') throw invalid(path, `effect must be "allow" or "deny", not ${quote(value)}`);
  return value;
}

function parseActions(value: unknown, path: string): readonly PolicyAction[] {
  const actions = expectArray(value, path, 'actions', POLICY_ACTIONS.length).map((item, i) => {
    if (typeof item !== 'string' || !(POLICY_ACTIONS as readonly string[]).includes(item)) {
      throw invalid(`${path}/${i}`, `unknown action ${quote(item)}: use ${POLICY_ACTIONS.join(', ')}`);
    }
    return item as PolicyAction;
  });
  checkUnique(actions, path, 'action');
  return actions;
}

function parseResources(value: unknown, path: string): readonly { readonly text: string; readonly template: ResourceTemplate }[] {
  const resources = expectArray(value, path, 'resources', POLICY_LIMITS.maxResourcesPerStatement).map((item, i) => {
    const text = expectString(item, `${path}/${i}`, 'a resource', POLICY_LIMITS.maxResourceLength);
    return { text, template: parseResource(text, `${path}/${i}`) };
  });
  checkUnique(resources.map((r) => r.text), path, 'resource');
  return resources;
}

/**
 * Every action needs a resource of its kind and every resource an action of its kind: `mqtt:connect`
 * with only `topic/...` resources would grant nothing, which is always a mistake worth reporting.
 */
function checkKindsMatch(actions: readonly PolicyAction[], resources: readonly { readonly template: ResourceTemplate }[], path: string): void {
  const kindOf = (action: PolicyAction) => (action === 'mqtt:connect' ? 'client' : 'topic');
  for (const [i, action] of actions.entries()) {
    if (!resources.some((r) => r.template.kind === kindOf(action))) {
      throw invalid(`${path}/actions/${i}`, `${action} needs at least one ${kindOf(action) === 'client' ? 'client/<id>' : 'topic/<pattern>'} resource`);
    }
  }
  for (const [i, resource] of resources.entries()) {
    if (!actions.some((a) => kindOf(a) === resource.template.kind)) {
      throw invalid(`${path}/resources/${i}`, resource.template.kind === 'client' ? 'a client/ resource is used only by mqtt:connect' : 'a topic/ resource needs mqtt:publish, mqtt:subscribe, mqtt:receive or mqtt:retain');
    }
  }
}

function checkUniqueSids(sids: readonly (readonly [string, number])[]): void {
  const seen = new Set<string>();
  for (const [sid, index] of sids) {
    if (seen.has(sid)) throw invalid(`/statements/${index}/sid`, `sid ${quote(sid)} is used by an earlier statement`);
    seen.add(sid);
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
