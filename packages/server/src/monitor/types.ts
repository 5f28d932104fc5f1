/**
 * Rule 5's contract between detection (what is unexpected) and response (alerts, their lifecycle
 * and the actions that contain a device). Detection produces Detections; the alert service dedupes
 * them into alerts and runs the actions the behaviour asks for.
 */

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const RESPONSE_ACTIONS = ['quarantine', 'revoke-certificate', 'suspend', 'force-rotation', 'start-update', 'notify'] as const;
export type ResponseActionName = (typeof RESPONSE_ACTIONS)[number];

/** One behaviour violated by one device in one window. */
export interface Detection {
  readonly thing: string;
  /** The behaviour's name (`messages-out-high`), or the built-in rule's (`new-listening-port`). */
  readonly behavior: string;
  /** The security profile the behaviour belongs to; null for a built-in rule. */
  readonly profile: string | null;
  readonly severity: Severity;
  readonly metric: string;
  /** What was observed (a number, a port, an address...). */
  readonly value: unknown;
  readonly message: string;
  /** ISO time of the window's end. */
  readonly at: string;
  /** Detections with the same key are one alert (while it is open). */
  readonly dedupeKey: string;
  /** Actions to run automatically (from the behaviour); empty: alert only. */
  readonly actions: readonly ResponseActionName[];
}

export interface DetectionSink {
  detected(detection: Detection): Promise<void>;
}
