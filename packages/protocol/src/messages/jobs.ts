import { MessageReader } from './validate.js';

/**
 * Update jobs (rule 4) on `$fw/things/{thing}/jobs/...`: the gateway tells a device which update
 * it should install; the device reports each step. What to install is only named here: the
 * version, security version, hashes and compatible hardware the device trusts come from the
 * signed TUF metadata, never from this message.
 */

export const MAX_JOBS_BYTES = 65_536;
export const MAX_JOB_UPDATE_BYTES = 4_096;
/** At most this many pending jobs are listed for one device. */
export const MAX_PENDING_JOBS = 16;

/** A job's state, as the server keeps it. `queued` and `in-progress` are open; the rest are final. */
export const JOB_STATES = ['queued', 'in-progress', 'succeeded', 'failed', 'rejected', 'timed-out', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'rejected', 'timed-out', 'cancelled'];

/** What a device reports: it may say a queued job waits (maintenance window, battery), and every step after. */
export const REPORTED_JOB_STATES = ['queued', 'in-progress', 'succeeded', 'failed', 'rejected'] as const;
export type ReportedJobState = (typeof REPORTED_JOB_STATES)[number];

export const JOB_STEPS = ['downloading', 'verifying', 'installing', 'rebooting', 'confirming'] as const;
export type JobStep = (typeof JOB_STEPS)[number];

/**
 * Why a device did not (yet) install: `rejected` reasons are refusals of the update itself
 * (`signature`, `rollback`, `incompatible`); `failed` reasons are failures to apply it; `queued`
 * reasons say why it waits.
 */
export const JOB_REASONS = [
  'signature',
  'rollback',
  'incompatible',
  'not-found',
  'download-failed',
  'too-large',
  'install-failed',
  'boot-failed',
  'health-check-failed',
  'maintenance-window',
  'battery-low',
  'cancelled',
  'timed-out',
  'other',
] as const;
export type JobReason = (typeof JOB_REASONS)[number];

const JOB_ID = { maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ };
const TARGET_PATH = { maxLength: 255, pattern: /^[A-Za-z0-9._-]+$/ };
const VERSION = { maxLength: 64, pattern: /^[0-9A-Za-z.+-]+$/ };
const URL = { maxLength: 512, pattern: /^https:\/\/[^\s]+$/ };
const SECURITY_VERSION = { min: 0, max: 2_147_483_647 };
const BYTE_COUNT = { min: 0, max: Number.MAX_SAFE_INTEGER };

/** One job as the device sees it: which signed target to install, and where the repository is. */
export interface UpdateJob {
  readonly jobId: string;
  readonly deploymentId: string;
  readonly state: 'queued' | 'in-progress';
  /** The TUF target path of the artifact. */
  readonly target: string;
  readonly version: string;
  readonly securityVersion: number;
  /** TUF metadata (`N.root.json`, `timestamp.json`, ...), over HTTPS with the device certificate. */
  readonly metadataUrl: string;
  /** Target files (`<sha256>.<target>`), with HTTP Range for resumed downloads. */
  readonly targetsUrl: string;
  readonly createdAt: string;
}

/** `$fw/things/{thing}/jobs/notify` (pushed) and `$fw/things/{thing}/jobs` (answer to `.../jobs/get`). */
export interface PendingJobs {
  readonly v: 1;
  readonly jobs: readonly UpdateJob[];
  /** Echoed from a `jobs/get` request. */
  readonly clientToken?: string;
}

/** `$fw/things/{thing}/jobs/{jobId}/update`: a step of the device's progress. */
export interface JobUpdate {
  readonly v: 1;
  readonly state: ReportedJobState;
  readonly step?: JobStep;
  readonly reason?: JobReason;
  readonly message?: string;
  readonly bytes?: number;
  readonly totalBytes?: number;
  readonly clientToken?: string;
}

/** `.../jobs/{jobId}/update/accepted`: the state the server recorded. */
export interface JobUpdateAccepted {
  readonly jobId: string;
  readonly state: JobState;
  readonly clientToken?: string;
}

export function parsePendingJobs(payload: Uint8Array): PendingJobs {
  const reader = MessageReader.of(payload, 'job list', MAX_JOBS_BYTES);
  reader.literal('v', 1);
  const jobs = reader.objectArray('jobs', MAX_PENDING_JOBS, readJob);
  const clientToken = reader.optionalString('clientToken', { maxLength: 64 });
  reader.done();
  return { v: 1, jobs, ...(clientToken !== undefined && { clientToken }) };
}

function readJob(reader: MessageReader): UpdateJob {
  return {
    jobId: reader.string('jobId', JOB_ID),
    deploymentId: reader.string('deploymentId', JOB_ID),
    state: reader.choice('state', ['queued', 'in-progress'] as const),
    target: reader.string('target', TARGET_PATH),
    version: reader.string('version', VERSION),
    securityVersion: reader.integer('securityVersion', SECURITY_VERSION),
    metadataUrl: reader.string('metadataUrl', URL),
    targetsUrl: reader.string('targetsUrl', URL),
    createdAt: reader.timestamp('createdAt'),
  };
}

export function parseJobUpdate(payload: Uint8Array): JobUpdate {
  const reader = MessageReader.of(payload, 'job update', MAX_JOB_UPDATE_BYTES);
  reader.literal('v', 1);
  const state = reader.choice('state', REPORTED_JOB_STATES);
  const step = reader.optionalChoice('step', JOB_STEPS);
  const reason = reader.optionalChoice('reason', JOB_REASONS);
  const message = reader.optionalString('message', { maxLength: 512 });
  const bytes = reader.optionalInteger('bytes', BYTE_COUNT);
  const totalBytes = reader.optionalInteger('totalBytes', BYTE_COUNT);
  const clientToken = reader.optionalString('clientToken', { maxLength: 64 });
  reader.done();
  return {
    v: 1,
    state,
    ...(step !== undefined && { step }),
    ...(reason !== undefined && { reason }),
    ...(message !== undefined && { message }),
    ...(bytes !== undefined && { bytes }),
    ...(totalBytes !== undefined && { totalBytes }),
    ...(clientToken !== undefined && { clientToken }),
  };
}

export function isJobId(value: string): boolean {
  return value.length <= JOB_ID.maxLength && JOB_ID.pattern.test(value);
}
