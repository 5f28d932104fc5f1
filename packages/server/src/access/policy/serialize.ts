import type { PolicyDocument, Statement } from './types.js';

/**
 * The canonical JSON of a policy document: fields in a fixed order, optional ones only when present.
 * `parsePolicyJson(serializePolicy(d))` equals `d` for every valid document (property-tested), so a
 * stored policy reads back exactly as written.
 */
export function serializePolicy(document: PolicyDocument, indent?: number): string {
  return JSON.stringify(canonical(document), null, indent);
}

function canonical(document: PolicyDocument): unknown {
  return {
    version: document.version,
    ...(document.description !== undefined && { description: document.description }),
    statements: document.statements.map(canonicalStatement),
  };
}

function canonicalStatement(statement: Statement): unknown {
  const conditions = statement.conditions;
  return {
    ...(statement.sid !== undefined && { sid: statement.sid }),
    effect: statement.effect,
    actions: [...statement.actions],
    resources: [...statement.resources],
    ...(conditions !== undefined && {
      conditions: {
        ...(conditions.sourceAddress !== undefined && { sourceAddress: [...conditions.sourceAddress] }),
        ...(conditions.thingAttributes !== undefined && { thingAttributes: { ...conditions.thingAttributes } }),
        ...(conditions.certIssuer !== undefined && { certIssuer: [...conditions.certIssuer] }),
      },
    }),
  };
}
