export interface KeepAliveLimits {
  readonly minKeepAliveSeconds: number;
  readonly maxKeepAliveSeconds: number;
}

export interface KeepAlive {
  /** The Keep Alive the server holds the client to, in seconds (never 0: idle clients time out). */
  readonly seconds: number;
  /** The Server Keep Alive to put in CONNACK (MQTT 5 only), when it differs from what was asked. */
  readonly serverKeepAlive: number | undefined;
}

/**
 * Brings the client's Keep Alive within our bounds. A 0 (no keep alive) or too long a value
 * becomes the maximum and a too short one the minimum. An MQTT 5 client is told in CONNACK and must
 * use it (MQTT-3.2.2-21); a 3.1.1 client cannot be told, so the bound is simply where the server
 * closes an idle connection. Pure.
 */
export function negotiateKeepAlive(requested: number, version: 4 | 5, limits: KeepAliveLimits): KeepAlive {
  let seconds = requested;
  if (requested === 0 || requested > limits.maxKeepAliveSeconds) seconds = limits.maxKeepAliveSeconds;
  else if (requested < limits.minKeepAliveSeconds) seconds = limits.minKeepAliveSeconds;
  return { seconds, serverKeepAlive: version === 5 && seconds !== requested ? seconds : undefined };
}
