import { createRequire } from 'node:module';
import type { Ajv, ValidateFunction } from 'ajv';
import { FleetwardError } from '@fleetward/protocol';

/**
 * JSON Schemas the application declares for what it sends and accepts (telemetry streams, command
 * parameters), compiled once. A value that violates its schema is refused on the device: a broken
 * sensor must not fill the queue with data the platform would refuse anyway.
 */
export class ReadingSchemas {
  readonly #validators = new Map<string, ValidateFunction>();

  /** Compiles a schema under a name; an invalid schema is FW_ERR_CONFIG_INVALID. */
  declare(name: string, schema: object): void {
    try {
      this.#validators.set(name, compiled(schema));
    } catch (error) {
      throw new FleetwardError('FW_ERR_CONFIG_INVALID', `the schema for ${name} is not a valid JSON Schema: ${(error as Error).message}`, { schema: name });
    }
  }

  has(name: string): boolean {
    return this.#validators.has(name);
  }

  /** Throws FW_ERR_PAYLOAD_REJECTED naming the first violation; a name with no schema passes. */
  check(name: string, value: unknown): void {
    const validate = this.#validators.get(name);
    if (validate === undefined || validate(value)) return;
    const first = validate.errors?.[0];
    throw new FleetwardError('FW_ERR_PAYLOAD_REJECTED', `${name}: ${first ? `${first.instancePath || '/'} ${first.message ?? 'is invalid'}` : 'is invalid'}`, { schema: name, path: first?.instancePath ?? '' });
  }
}

/** Distinct schemas a process keeps compiled; beyond it the least recently compiled is forgotten. */
const MAX_COMPILED_SCHEMAS = 256;
const compiledByText = new Map<string, ValidateFunction>();

/**
 * The validator for a schema, compiled once per distinct schema in the process: a data contract
 * arrives as a new object on every connection, and a simulator runs thousands of agents with the
 * same schemas. Ajv caches by object identity and keeps everything it compiled (about 0.7 ms and
 * 5 KB per schema object), so the schema is compiled here by its text and removed from Ajv's cache.
 */
function compiled(schema: object): ValidateFunction {
  const text = JSON.stringify(schema);
  let validate = compiledByText.get(text);
  if (validate === undefined) {
    const ajv = compiler();
    validate = ajv.compile(schema);
    ajv.removeSchema(schema);
    if (compiledByText.size >= MAX_COMPILED_SCHEMAS) compiledByText.delete(compiledByText.keys().next().value as string);
    compiledByText.set(text, validate);
  }
  return validate;
}

// One compiler per process, created on first use. Ajv itself (about 4 MB resident) is
// loaded then too, not at start: a device that declares no schema and receives no data contract
// never needs it. `declare` is synchronous (an application's `onCommand` throws at once on a bad
// schema), so the CommonJS package is required here rather than awaited with import().
let shared: Ajv | undefined;
function compiler(): Ajv {
  if (shared === undefined) {
    const { Ajv: AjvClass } = createRequire(import.meta.url)('ajv') as { readonly Ajv: typeof Ajv };
    shared = new AjvClass({ allErrors: false, strict: true, coerceTypes: false, useDefaults: false, removeAdditional: false });
  }
  return shared;
}
