import { quote } from '../invalid.js';
import { untranslatable } from './untranslatable.js';
import { translateVariables, type VariableContext } from './aws-variables.js';

/** A resource of an AWS IoT statement: an ARN of an MQTT kind, or `*`. */
export type AwsResource = { readonly kind: 'all'; readonly path: string } | { readonly kind: 'client' | 'topic' | 'topicfilter'; readonly name: string; readonly path: string };

const PARTITIONS = new Set(['aws', 'aws-cn', 'aws-us-gov']);
const KINDS = new Set(['client', 'topic', 'topicfilter']);

/**
 * The region and account the document's ARNs must name. Fleetward has one namespace, so ARNs of
 * different accounts or regions (which AWS keeps apart) cannot be merged exactly: the first concrete
 * value fixes each, unless the caller names them; `*` matches either.
 */
export class ArnScope {
  #region: string | undefined;
  #account: string | undefined;

  constructor(region: string | undefined, account: string | undefined) {
    this.#region = region;
    this.#account = account;
  }

  check(field: 'region' | 'account', value: string, path: string, label: string): void {
    if (value === '*') return;
    if (value === '' || value.includes('*') || value.includes('?')) throw untranslatable(path, label, `ARN ${field} ${quote(value)} must be a ${field} or *`);
    const expected = field === 'region' ? this.#region : this.#account;
    if (expected === undefined) {
      if (field === 'region') this.#region = value;
      else this.#account = value;
    } else if (expected !== value) {
      throw untranslatable(path, label, `ARN ${field} ${quote(value)} differs from ${quote(expected)}: AWS keeps them apart, Fleetward has one namespace`);
    }
  }
}

/** Parses `*` or `arn:PARTITION:iot:REGION:ACCOUNT:TYPE/NAME` (NAME may contain `:` and variables). */
export function readAwsResource(value: string, path: string, label: string, scope: ArnScope): AwsResource {
  if (value === '*') return { kind: 'all', path };
  const fields = value.split(':');
  if (fields.length < 6 || fields[0] !== 'arn' || fields[2] !== 'iot') throw untranslatable(path, label, `${quote(value)} is not an AWS IoT ARN (arn:aws:iot:REGION:ACCOUNT:TYPE/NAME) or *`);
  if (!PARTITIONS.has(fields[1] as string)) throw untranslatable(path, label, `unknown ARN partition ${quote(fields[1])}`);
  scope.check('region', fields[3] as string, path, label);
  scope.check('account', fields[4] as string, path, label);
  const rest = fields.slice(5).join(':');
  const slash = rest.indexOf('/');
  const kind = slash === -1 ? rest : rest.slice(0, slash);
  if (!KINDS.has(kind) || slash === -1) throw untranslatable(path, label, `resource type ${quote(kind)} has no Fleetward equivalent (only client/, topic/ and topicfilter/ do)`);
  return { kind: kind as 'client' | 'topic' | 'topicfilter', name: rest.slice(slash + 1), path };
}

type Context = Omit<VariableContext, 'path' | 'inClientId'>;

/** `client/ID`: `*` alone is any client id; other `*` or `?` have no equivalent. */
export function translateClient(resource: AwsResource, context: Context): string {
  if (resource.kind === 'all') return 'client/*';
  const name = translateVariables(resource.name, { ...context, path: resource.path, inClientId: true });
  if (name === '*') return 'client/*';
  if (/[*?]/.test(name)) throw untranslatable(resource.path, context.label, `client id pattern ${quote(resource.name)} cannot be translated: only an exact id or * can`);
  return `client/${name}`;
}

/**
 * `topic/NAME` for Publish, Receive and RetainPublish. AWS matches the topic name with `*` (any
 * characters, `/` included) and `?`, and treats `+` and `#` literally (they then match no topic).
 * Exact equivalents exist for a literal name and for a single trailing `/*`: `P/*` matches `P/`
 * followed by anything, i.e. every topic of at least one more level below P, which is `P/+/#` (not
 * `P/#`, which also matches P itself). `*` alone would include the `$` topics, which no Fleetward
 * pattern does: refused.
 */
export function translateTopic(resource: AwsResource, context: Context): string {
  if (resource.kind === 'all') throw untranslatable(resource.path, context.label, 'Resource * also covers every $ topic, which no Fleetward pattern does: name the topics (topic/# is every topic outside the $ namespaces)');
  const name = translateVariables(resource.name, { ...context, path: resource.path, inClientId: false });
  const prefix = trailingStarPrefix(name, resource, context);
  const literal = prefix ?? name;
  if (/[+#]/.test(literal)) throw untranslatable(resource.path, context.label, `${quote(resource.name)}: + and # are literal characters in an AWS topic resource and match no topic name; in Fleetward they are wildcards`);
  return prefix === undefined ? `topic/${name}` : `topic/${prefix}/+/#`;
}

/**
 * `topicfilter/FILTER` for Subscribe. AWS compares the requested filter string with the resource
 * (`*`/`?` as globs, `+`/`#` literal); Fleetward allows a filter when the topics it can match are
 * covered. A literal filter F allows exactly the subscriptions that reach F's topics or fewer, and a
 * trailing `P/*` allows every filter string starting with `P/`, among them `P/#`: so both reach
 * exactly the topics of `F`, resp. `P/#`. For Deny, Fleetward refuses every filter that meets the
 * pattern, where AWS refuses only the literal string: the same or stricter, never wider.
 */
export function translateTopicFilter(resource: AwsResource, context: Context): string {
  if (resource.kind === 'all') throw untranslatable(resource.path, context.label, 'Resource * also covers every $ topic, which no Fleetward pattern does: name the topic filters (topic/# is every topic outside the $ namespaces)');
  const name = translateVariables(resource.name, { ...context, path: resource.path, inClientId: false });
  const prefix = trailingStarPrefix(name, resource, context);
  return prefix === undefined ? `topic/${name}` : `topic/${prefix}/#`;
}

/** The P of a name ending in a single `/*`; undefined when the name has no glob; refuses other globs. */
function trailingStarPrefix(name: string, resource: AwsResource & { readonly name: string }, context: Context): string | undefined {
  if (name === '*') throw untranslatable(resource.path, context.label, `${resource.kind}/* also covers every $ topic, which no Fleetward pattern does: name the topics (topic/# is every topic outside the $ namespaces)`);
  if (!/[*?]/.test(name)) return undefined;
  if (name.endsWith('/*') && name.indexOf('*') === name.length - 1 && !name.includes('?')) return name.slice(0, -2);
  throw untranslatable(resource.path, context.label, `${quote(resource.name)}: AWS * and ? match any characters (across levels too) and translate exactly only as a trailing /*`);
}
