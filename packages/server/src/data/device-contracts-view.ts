import type { DeviceContract, DeviceContracts, DeviceTransform } from '@fleetward/protocol';
import { THING_VARIABLE, type DataContract, type Transform } from './contract.js';

/**
 * The contracts in force for one thing, as its agent may apply them before sending (rule 9:
 * unneeded data never leaves the device): the thing's type or any type, in the order ingest picks
 * them (`contracts` arrives most specific first), the topic bound to the thing, the schema as
 * applied, and per field only what the device can do alone. Transforms that need a server key
 * become `keep` there; ingest applies them, and enforces the whole contract again.
 */
export function deviceContractsFor(contracts: readonly DataContract[], thing: string, thingType: string | null): DeviceContracts {
  return { thing, contracts: contracts.filter((c) => c.thingType === null || c.thingType === thingType).map((c) => deviceView(c, thing)) };
}

function deviceView(contract: DataContract, thing: string): DeviceContract {
  return {
    name: contract.name,
    version: contract.version,
    topic: contract.topic.split('/').map((level) => (level === THING_VARIABLE ? thing : level)).join('/'),
    schema: contract.document.schema as Readonly<Record<string, unknown>>,
    fields: contract.fields.map((f) => ({ path: f.path, transform: onDevice(f.transform) })),
  };
}

function onDevice(transform: Transform): DeviceTransform {
  switch (transform.kind) {
    case 'keep':
    case 'drop':
    case 'round':
    case 'bucket':
    case 'time-bucket':
    case 'truncate':
      return transform;
    case 'pseudonymize':
    case 'tokenize':
    case 'encrypt':
      return { kind: 'keep' };
  }
}
