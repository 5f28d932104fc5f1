import { Writable } from 'node:stream';
import type { IssuedToken } from '../../src/access/operators.js';
import type { Role } from '../../src/access/roles.js';
import type { Clock } from '../../src/clock.js';
import { createLogger } from '../../src/observability/logger.js';
import { buildNode, closeContext, localActor, openHome, type FleetwardNode, type NodeContext } from '../../src/node.js';
import { testEnvironment, TestClock, type Dialect, type TestEnvironment } from './environment.js';

/** Everything the node logged, as text, to check that no secret ever reaches the log. */
export class LogCapture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
}

export interface TestNode {
  readonly env: TestEnvironment;
  readonly node: FleetwardNode;
  readonly bootstrapToken: IssuedToken;
  readonly log: LogCapture;
  /** Creates an operator with the given role and returns its API token. */
  operatorToken(name: string, role: Role, scopes?: readonly ('api' | 'metrics')[]): Promise<string>;
  close(): Promise<void>;
}

/** A node on a fresh data folder and database, built but not listening (use `api.inject` or `listen`). */
export async function startTestNode(dialect: Dialect, options: { clock?: Clock; env?: Readonly<Record<string, string>> } = {}): Promise<TestNode> {
  const env = await testEnvironment(dialect, { FLEETWARD_LOG_LEVEL: 'info', ...options.env });
  const log = new LogCapture();
  const { context, report } = await openHome(env.config(), { create: true, logger: createLogger('info', log), ...(options.clock && { clock: options.clock }) });
  const node = await buildNode(context);
  if (report.bootstrapToken === null) throw new Error('a fresh data folder must yield a bootstrap token');
  return {
    env,
    node,
    bootstrapToken: report.bootstrapToken,
    log,
    async operatorToken(name, role, scopes = ['api']) {
      const { token } = await context.operators.create({ name, role, scopes }, localActor());
      return token.token;
    },
    async close() {
      await node.close();
      await env.cleanup();
    },
  };
}

/** A freshly created data folder's context (no node built), on a test clock; its cleanup is pushed to `cleanups`. */
export async function freshContext(dialect: Dialect, cleanups: (() => Promise<void>)[]): Promise<NodeContext> {
  const env = await testEnvironment(dialect);
  const { context } = await openHome(env.config(), { create: true, clock: new TestClock() });
  cleanups.push(() => env.cleanup(), () => closeContext(context));
  return context;
}
