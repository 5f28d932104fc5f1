import { quote } from '../invalid.js';
import { untranslatable } from './untranslatable.js';

/** One AWS IoT policy statement, read but not yet translated. */
export interface AwsStatement {
  /** Where it sits in the document, e.g. `/Statement/2`. */
  readonly path: string;
  /** Its Sid, or `#<index>`, for messages. */
  readonly label: string;
  readonly index: number;
  readonly sid: string | undefined;
  readonly effect: 'Allow' | 'Deny';
  /** With the JSON path of each entry (`/Action/1`, or `/Action` for a single string). */
  readonly actions: readonly { readonly value: string; readonly path: string }[];
  readonly resources: readonly { readonly value: string; readonly path: string }[];
  readonly condition: Readonly<Record<string, unknown>> | undefined;
}

const REFUSED_ELEMENTS: ReadonlyMap<string, string> = new Map(Object.entries({
  NotAction: 'NotAction grants everything except some actions; list the actions instead',
  NotResource: 'NotResource grants everything except some resources; list the resources instead',
  Principal: 'Principal belongs to resource-based policies, not to AWS IoT policies',
  NotPrincipal: 'NotPrincipal belongs to resource-based policies, not to AWS IoT policies',
}));

/** Reads a policy document of version 2012-10-17: `Version`, `Statement` (one or a list), optional `Id`. */
export function readAwsDocument(document: unknown): AwsStatement[] {
  const object = asObject(document, '', null, 'an AWS IoT policy document');
  for (const key of Object.keys(object)) {
    if (key !== 'Version' && key !== 'Statement' && key !== 'Id') throw untranslatable(`/${key}`, null, `unknown policy element ${quote(key)}`);
  }
  // Policy variables exist only in version 2012-10-17; an older document reads `${...}` literally.
  if (object.Version !== '2012-10-17') throw untranslatable('/Version', null, `Version must be "2012-10-17", not ${quote(object.Version)}`);
  const statements = object.Statement;
  if (statements === undefined) throw untranslatable('/Statement', null, 'the document has no Statement');
  const list = Array.isArray(statements) ? (statements as unknown[]) : [statements];
  if (list.length === 0) throw untranslatable('/Statement', null, 'the document has no statements');
  return list.map((statement, i) => readStatement(statement, Array.isArray(statements) ? `/Statement/${i}` : '/Statement', i));
}

function readStatement(value: unknown, path: string, index: number): AwsStatement {
  const object = asObject(value, path, `#${index}`, 'a statement');
  const sid = typeof object.Sid === 'string' && object.Sid.length > 0 ? object.Sid : undefined;
  const label = sid ?? `#${index}`;
  for (const key of Object.keys(object)) {
    const refused = REFUSED_ELEMENTS.get(key);
    if (refused !== undefined) throw untranslatable(`${path}/${key}`, label, refused);
    if (!['Sid', 'Effect', 'Action', 'Resource', 'Condition'].includes(key)) throw untranslatable(`${path}/${key}`, label, `unknown statement element ${quote(key)}`);
  }
  if (object.Sid !== undefined && typeof object.Sid !== 'string') throw untranslatable(`${path}/Sid`, label, 'Sid must be a string');
  if (object.Effect !== 'Allow' && object.Effect !== 'Deny') throw untranslatable(`${path}/Effect`, label, `Effect must be "Allow" or "Deny", not ${quote(object.Effect)}`);
  const condition = object.Condition === undefined ? undefined : asObject(object.Condition, `${path}/Condition`, label, 'Condition');
  return {
    path,
    label,
    index,
    sid,
    effect: object.Effect,
    actions: stringList(object.Action, `${path}/Action`, label, 'Action'),
    resources: stringList(object.Resource, `${path}/Resource`, label, 'Resource'),
    condition,
  };
}

/** AWS accepts a single string or a list of strings for Action and Resource. */
function stringList(value: unknown, path: string, label: string, what: string): { value: string; path: string }[] {
  if (typeof value === 'string') return [{ value, path }];
  if (!Array.isArray(value) || value.length === 0) throw untranslatable(path, label, `${what} must be a string or a non-empty list of strings`);
  return (value as unknown[]).map((item, i) => {
    if (typeof item !== 'string') throw untranslatable(`${path}/${i}`, label, `${what} entries must be strings`);
    return { value: item, path: `${path}/${i}` };
  });
}

function asObject(value: unknown, path: string, label: string | null, what: string): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw untranslatable(path, label, `${what} must be a JSON object`);
  return value as Readonly<Record<string, unknown>>;
}
