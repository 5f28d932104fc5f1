import { quote } from '../invalid.js';
import type { PolicyAction } from '../types.js';
import type { AwsStatement } from './aws-document.js';
import { untranslatable } from './untranslatable.js';

/** AWS IoT data-plane actions with an exact Fleetward equivalent (action names are case-insensitive in AWS). */
const ACTIONS: ReadonlyMap<string, PolicyAction> = new Map(Object.entries({
  'iot:connect': 'mqtt:connect',
  'iot:publish': 'mqtt:publish',
  'iot:subscribe': 'mqtt:subscribe',
  'iot:receive': 'mqtt:receive',
  // AWS, like Fleetward, requires iot:Publish as well for a retained PUBLISH.
  'iot:retainpublish': 'mqtt:retain',
} satisfies Record<string, PolicyAction>));

const ALL_MQTT_ACTIONS: readonly PolicyAction[] = ['mqtt:connect', 'mqtt:publish', 'mqtt:subscribe', 'mqtt:receive', 'mqtt:retain'];

/**
 * Maps a statement's actions. `iot:*` and `*` also cover every non-MQTT action (shadows, jobs,
 * retained-message APIs...): restricted to MQTT they would be exact, but importing them silently would
 * hide the widest grant there is, so they are refused unless the caller opts in.
 */
export function translateActions(statement: AwsStatement, expandWildcard: boolean): Set<PolicyAction> {
  const actions = new Set<PolicyAction>();
  for (const { value, path } of statement.actions) {
    const name = value.toLowerCase();
    if (name === 'iot:*' || name === '*') {
      if (!expandWildcard) throw untranslatable(path, statement.label, `${quote(value)} grants every AWS IoT action: list the MQTT actions it needs (or import with wildcard actions expanded)`);
      for (const action of ALL_MQTT_ACTIONS) actions.add(action);
      continue;
    }
    if (name.includes('*') || name.includes('?')) throw untranslatable(path, statement.label, `action pattern ${quote(value)} cannot be translated: list the actions`);
    const action = ACTIONS.get(name);
    if (action === undefined) throw untranslatable(path, statement.label, `action ${quote(value)} has no Fleetward equivalent (only iot:Connect, iot:Publish, iot:Subscribe, iot:Receive and iot:RetainPublish do)`);
    actions.add(action);
  }
  return actions;
}
