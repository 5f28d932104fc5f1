import { FleetwardError, errorCodes } from '@fleetward/protocol';

/** How a command prints: human text by default, one JSON document with --json. */
export interface Output {
  readonly json: boolean;
  /** Prints the command's result. */
  result<T>(data: T, human: (data: T) => string): void;
  /** Prints a note for people (never in --json mode, never on stdout). */
  note(text: string): void;
}

export function createOutput(json: boolean): Output {
  return {
    json,
    result(data, human) {
      process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human(data)}\n`);
    },
    note(text) {
      if (!json) process.stderr.write(`${text}\n`);
    },
  };
}

/** Prints an error the way the output mode wants and returns the exit code its error code maps to. */
export function reportError(error: unknown, json: boolean): number {
  const failure = error instanceof FleetwardError ? error : new FleetwardError('FW_ERR_INTERNAL', error instanceof Error ? error.message : String(error));
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: { code: failure.code, message: failure.message, details: failure.details } }, null, 2)}\n`);
  } else {
    process.stderr.write(`error: ${failure.message} (${failure.code})\n`);
  }
  return errorCodes[failure.code].exit;
}

/** Renders rows as an aligned text table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}
