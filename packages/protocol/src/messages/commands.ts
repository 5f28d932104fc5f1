import { MessageReader } from './validate.js';

/** Commands are small: a name and a few parameters. */
export const MAX_COMMAND_BYTES = 16_384;
const COMMAND_ID = { maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ };
const COMMAND_NAME = { maxLength: 64, pattern: /^[a-z][a-z0-9-]*$/ };
const TIMESTAMP = { maxLength: 40, pattern: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/ };

/**
 * `$fw/things/{thing}/commands`: an operator (or a rule) asks the device to do something. The id is
 * unique per command, so a replayed command is recognised; an expired one is refused unexecuted.
 */
export interface DeviceCommand {
  readonly v: 1;
  readonly id: string;
  readonly name: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly issuedAt: string;
  readonly expiresAt?: string;
}

export const COMMAND_OUTCOMES = ['succeeded', 'failed', 'rejected'] as const;
export type CommandOutcome = (typeof COMMAND_OUTCOMES)[number];

/** `$fw/things/{thing}/commands/result`: what became of a command (a stable error code when refused). */
export interface CommandResult {
  readonly v: 1;
  /** Absent only when the command was too broken to carry a readable id. */
  readonly id?: string;
  readonly outcome: CommandOutcome;
  readonly code?: string;
  readonly message?: string;
  readonly output?: Readonly<Record<string, unknown>>;
}

export function parseDeviceCommand(payload: Uint8Array): DeviceCommand {
  const reader = MessageReader.of(payload, 'command', MAX_COMMAND_BYTES);
  reader.literal('v', 1);
  const id = reader.string('id', COMMAND_ID);
  const name = reader.string('name', COMMAND_NAME);
  const params = reader.optionalObject('params') ?? {};
  const issuedAt = reader.string('issuedAt', TIMESTAMP);
  const expiresAt = reader.optionalString('expiresAt', TIMESTAMP);
  reader.done();
  return { v: 1, id, name, params, issuedAt, ...(expiresAt !== undefined && { expiresAt }) };
}

/** The id of a command too broken to parse, when it can still be read, to name it in the rejection. */
export function commandIdOf(payload: Uint8Array): string | undefined {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(payload));
    const id = typeof value === 'object' && value !== null ? (value as Record<string, unknown>).id : undefined;
    return typeof id === 'string' && id.length <= COMMAND_ID.maxLength && COMMAND_ID.pattern.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}
