import type { Actor } from '../audit/audit-events.js';

/** An uploaded firmware artifact (rule 4), as every part of the update domain sees it. */
export interface FirmwareArtifact {
  /** The TUF target path: `<name>-<version>`. */
  readonly target: string;
  readonly name: string;
  /** Semantic version. */
  readonly version: string;
  /** The anti-rollback counter: a device never installs below the highest it has run. */
  readonly securityVersion: number;
  /** Hex SHA-256 of the bytes. */
  readonly sha256: string;
  readonly size: number;
  /** Thing types the artifact is built for. */
  readonly hardware: readonly string[];
  readonly releaseNotes: string | null;
  /** A security release deploys automatically to the groups that opt in. */
  readonly securityRelease: boolean;
  readonly hasSbom: boolean;
  /** Whether the targets metadata in force lists it (only signed artifacts can be deployed). */
  readonly signed: boolean;
  readonly createdAt: string;
  readonly createdBy: string;
}

export const UPDATE_ALERT_KINDS = ['deployment-aborted', 'deployment-paused', 'job-timed-out', 'security-update-blocked', 'unauthorized-firmware', 'cannot-update'] as const;
export type UpdateAlertKind = (typeof UPDATE_ALERT_KINDS)[number];

/** Something an operator must look at now: audited, counted, logged (rule 5's alerting builds on these). */
export interface UpdateAlert {
  readonly kind: UpdateAlertKind;
  readonly message: string;
  readonly deployment?: string;
  readonly thing?: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export type RaiseAlert = (alert: UpdateAlert) => Promise<void>;

export const UPDATES_ACTOR: Actor = { name: 'updates' };
