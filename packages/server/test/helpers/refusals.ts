import { createServer } from 'node:net';
import { FleetwardError } from '@fleetward/protocol';

/** The stable code a refused operation fails with; fails the test if it was not refused. */
export async function refusalCode(operation: Promise<unknown>): Promise<string> {
  return (await refused(operation)).code;
}

/** The FleetwardError an asynchronous operation fails with; fails the test if it did not. */
export async function refused(operation: Promise<unknown>): Promise<FleetwardError> {
  try {
    await operation;
  } catch (error) {
    if (error instanceof FleetwardError) return error;
    throw error;
  }
  throw new Error('expected the operation to be refused');
}

/** `CODE` or `CODE:reason` of the refusal an operation fails with (the reason a denial names). */
export async function refusalReason(operation: Promise<unknown>): Promise<string> {
  const error = await refused(operation);
  return `${error.code}${typeof error.details.reason === 'string' ? `:${error.details.reason}` : ''}`;
}

/** The FleetwardError a synchronous operation fails with; fails the test if it did not. */
export function refusalOf(operation: () => unknown): FleetwardError {
  try {
    operation();
  } catch (error) {
    if (error instanceof FleetwardError) return error;
    throw error;
  }
  throw new Error('expected the operation to be refused');
}

/** A loopback port nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What a function throws (undefined if it returns): for errors that are not FleetwardErrors. */
export function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}
