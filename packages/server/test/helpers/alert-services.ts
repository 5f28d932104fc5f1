import { AlertServices, type AlertServicesDependencies } from '../../src/monitor/alerts/index.js';
import type { NodeContext } from '../../src/node.js';
/** Alert services over a node's context, as node.ts composes them. */
export function alertServicesFor(context: NodeContext, extra: Partial<AlertServicesDependencies> = {}): Promise<AlertServices> {
  return Promise.resolve(new AlertServices({
    store: context.store,
    audit: context.audit,
    clock: context.clock,
    keyRing: context.keyRing,
    things: context.identity.things,
    certificates: context.identity.certificates,
    deployments: context.updates.deployments,
    publish: () => undefined,
    ...extra,
  }));
}
