import type { Decision } from '../broker.js';
import type { LimitName } from '../broker-options.js';
import type { HookName } from '../hooks/broker-hooks.js';

/** The mutable counters behind `stats()`: plain fields, cheap to bump on the hot path. */
export class BrokerCounters {
  connectionsAccepted = 0;
  messagesReceived = 0;
  messagesDelivered = 0;
  messagesExpired = 0;
  protocolErrors = 0;
  keepAliveTimeouts = 0;
  persistenceErrors = 0;
  clusterErrors = 0;
  readonly limits: Partial<Record<LimitName, number>> = {};
  readonly denied: Record<Decision, number> = { connect: 0, authentication: 0, publish: 0, subscribe: 0, delivery: 0 };
  readonly hookErrors: Record<HookName, number> = { admit: 0, authorizePublish: 0, authorizeSubscribe: 0, authorizeDelivery: 0, authenticate: 0 };

  countLimit(limit: LimitName): void {
    this.limits[limit] = (this.limits[limit] ?? 0) + 1;
  }
}
