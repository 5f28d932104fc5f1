import { FleetwardError } from '@fleetward/protocol';

/**
 * A validation error pointing into the document with a JSON-pointer-like path
 * (`/statements/2/resources/0`), so an editor or the CLI can show where it is.
 */
export function invalid(path: string, message: string, details: Readonly<Record<string, unknown>> = {}): FleetwardError {
  return new FleetwardError('FW_ERR_VALIDATION', path === '' ? message : `${path}: ${message}`, { path, ...details });
}

/** Quotes a value for a message, shortened, so a huge or odd value cannot flood the message. */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? typeof value);
  } catch {
    text = typeof value;
  }
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
