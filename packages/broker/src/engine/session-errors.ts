/** The session could not be opened: the session store or the cluster failed (CONNACK 0x88 Server unavailable). */
export class SessionUnavailableError extends Error {
  override readonly name = 'SessionUnavailableError';
}

/**
 * A newer CONNECT for the same client id, on another node, took the session while this one was
 * still opening it: this connection closes without CONNACK, as after a takeover (MQTT-3.1.4-3).
 */
export class SessionSupersededError extends Error {
  override readonly name = 'SessionSupersededError';
}
