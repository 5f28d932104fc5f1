import { commandIdOf, FleetwardError, parseDeviceCommand, type CommandResult, type DeviceCommand } from '@fleetward/protocol';
import type { ReadingSchemas } from '../telemetry/reading-schemas.js';

/** What an application does with a command: its output, or a thrown error (reported as failed). */
export type CommandHandler = (params: Readonly<Record<string, unknown>>, command: DeviceCommand) => Promise<Record<string, unknown> | void> | Record<string, unknown> | void;

/** Remembered command ids: enough to recognise a replay within any sane command lifetime, bounded in memory. */
const REMEMBERED_IDS = 1_024;

/**
 * Validates and runs commands from the cloud. Every command gets exactly one result; a malformed,
 * expired, replayed, unknown or ill-parametered command is refused with a stable code and counted,
 * and nothing a message contains can crash the agent (handlers' errors are caught and reported).
 */
export class CommandDispatcher {
  readonly #handlers = new Map<string, CommandHandler>();
  readonly #schemas: ReadingSchemas;
  readonly #seen = new Set<string>();
  readonly #now: () => Date;
  #rejected = 0;
  #executed = 0;

  constructor(schemas: ReadingSchemas, now: () => Date = () => new Date()) {
    this.#schemas = schemas;
    this.#now = now;
  }

  get stats(): { readonly executed: number; readonly rejected: number } {
    return { executed: this.#executed, rejected: this.#rejected };
  }

  /** Registers a handler; `paramsSchema` (JSON Schema) is checked before the handler ever runs. */
  on(name: string, handler: CommandHandler, paramsSchema?: object): void {
    if (!/^[a-z][a-z0-9-]{0,63}$/.test(name)) throw new FleetwardError('FW_ERR_USAGE', `command names are lowercase letters, digits and -: ${name}`);
    if (paramsSchema) this.#schemas.declare(`command:${name}`, paramsSchema);
    this.#handlers.set(name, handler);
  }

  async dispatch(payload: Uint8Array): Promise<CommandResult> {
    let command: DeviceCommand;
    try {
      command = parseDeviceCommand(payload);
      this.#admit(command);
      this.#schemas.check(`command:${command.name}`, command.params);
    } catch (error) {
      const id = commandIdOf(payload);
      return this.#refuse(error, id);
    }
    const handler = this.#handlers.get(command.name) as CommandHandler;
    try {
      const output = await handler(command.params, command);
      this.#executed += 1;
      return { v: 1, id: command.id, outcome: 'succeeded', ...(output && { output }) };
    } catch (error) {
      this.#executed += 1;
      return { v: 1, id: command.id, outcome: 'failed', code: error instanceof FleetwardError ? error.code : 'FW_ERR_INTERNAL', message: error instanceof Error ? error.message : 'the command failed' };
    }
  }

  #admit(command: DeviceCommand): void {
    if (this.#seen.has(command.id)) throw new FleetwardError('FW_ERR_CONFLICT', `command ${command.id} was already received: a replay is not run again`);
    if (command.expiresAt !== undefined && Date.parse(command.expiresAt) <= this.#now().getTime()) throw new FleetwardError('FW_ERR_VALIDATION', `command ${command.id} expired at ${command.expiresAt}`, { field: 'expiresAt' });
    if (!this.#handlers.has(command.name)) throw new FleetwardError('FW_ERR_NOT_FOUND', `this device has no command ${command.name}`);
    this.#seen.add(command.id);
    if (this.#seen.size > REMEMBERED_IDS) this.#seen.delete(this.#seen.values().next().value as string);
  }

  #refuse(error: unknown, id: string | undefined): CommandResult {
    this.#rejected += 1;
    const known = error instanceof FleetwardError;
    return { v: 1, ...(id !== undefined && { id }), outcome: 'rejected', code: known ? error.code : 'FW_ERR_INTERNAL', message: known ? error.message : 'the command could not be processed' };
  }
}
