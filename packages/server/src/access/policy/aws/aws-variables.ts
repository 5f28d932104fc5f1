import { quote } from '../invalid.js';
import { ATTRIBUTE_KEY_PATTERN } from '../limits.js';
import { untranslatable } from './untranslatable.js';

/**
 * AWS IoT policy variables with an exact Fleetward equivalent. AWS thing names use the same alphabet
 * as Fleetward's, so `${thing.name}` substitutes to the same text. (Attribute values containing `/`
 * or `#`, which AWS substitutes textually, are unresolved in Fleetward: the same or stricter.)
 */
const VARIABLES: ReadonlyMap<string, string> = new Map([
  ['iot:Connection.Thing.ThingName', 'thing.name'],
  ['iot:Connection.Thing.ThingTypeName', 'thing.type'],
  ['iot:Certificate.Subject.CommonName', 'cert.cn'],
  ['iot:Certificate.SerialNumber', 'cert.serial'],
]);

const ATTRIBUTE = /^iot:Connection\.Thing\.Attributes\[(.*)\]$/;
export const AWS_THING_NAME = '${iot:Connection.Thing.ThingName}';
const CLIENT_ID = 'iot:ClientId';

export interface VariableContext {
  readonly path: string;
  readonly label: string;
  /**
   * Whether `${iot:ClientId}` equals the thing name: only when every Allow of iot:Connect in the
   * document names `client/${iot:Connection.Thing.ThingName}` (see clientIdBound).
   */
  readonly clientIdIsThingName: boolean;
  /** Client resources: `${iot:ClientId}` there would let any client id through. */
  readonly inClientId: boolean;
}

/** Rewrites the AWS variables of a resource into Fleetward's `${...}` syntax; refuses the others. */
export function translateVariables(text: string, context: VariableContext): string {
  let result = '';
  let at = 0;
  for (let open = text.indexOf('${'); open !== -1; open = text.indexOf('${', at)) {
    const close = text.indexOf('}', open);
    if (close === -1) throw untranslatable(context.path, context.label, `unterminated policy variable in ${quote(text)}`);
    result += text.slice(at, open) + `\${${fleetwardVariable(text.slice(open + 2, close), context)}}`;
    at = close + 1;
  }
  return result + text.slice(at);
}

function fleetwardVariable(name: string, context: VariableContext): string {
  const fixed = VARIABLES.get(name);
  if (fixed !== undefined) return fixed;
  const attribute = ATTRIBUTE.exec(name)?.[1];
  if (attribute !== undefined) {
    if (!ATTRIBUTE_KEY_PATTERN.test(attribute)) throw untranslatable(context.path, context.label, `attribute name ${quote(attribute)} is not a valid Fleetward attribute key`);
    return `thing.attr.${attribute}`;
  }
  if (name === CLIENT_ID) {
    if (context.inClientId) throw untranslatable(context.path, context.label, 'client/${iot:ClientId} lets every client id connect as itself; name the client id, e.g. client/${iot:Connection.Thing.ThingName}');
    if (!context.clientIdIsThingName) {
      throw untranslatable(
        context.path,
        context.label,
        '${iot:ClientId} is chosen by the device; it translates to ${thing.name} only when the document lets things connect solely as their own name (Allow iot:Connect on client/${iot:Connection.Thing.ThingName} and no other client)',
      );
    }
    return 'thing.name';
  }
  throw untranslatable(context.path, context.label, `policy variable \${${name.slice(0, 80)}} has no Fleetward equivalent`);
}
