import type { Command } from 'commander';
import { createOutput, reportError, type Output } from './output.js';

/**
 * Wraps a command's work: gives it its options and an Output, and turns any failure into a
 * printed error and the exit code its error code maps to (1 refused or failed, 2 bad input).
 */
export function action<A extends unknown[]>(work: (out: Output, options: Record<string, unknown>, ...args: A) => Promise<void>) {
  return async (...received: unknown[]): Promise<void> => {
    const command = received.at(-1) as Command;
    const options = command.opts();
    const json = options.json === true;
    try {
      await work(createOutput(json), options, ...(received.slice(0, command.registeredArguments.length) as A));
    } catch (error) {
      process.exitCode = reportError(error, json);
    }
  };
}

export function withJson(command: Command): Command {
  return command.option('--json', 'print the result as JSON');
}
