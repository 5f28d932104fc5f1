import type { JobReason } from '@fleetward/protocol';
import { DownloadHTTPError, DownloadLengthMismatchError } from 'tuf-js/dist/error.js';

/** How a job ends when it does not install: the state and reason reported to the gateway. */
export interface UpdateRefusal {
  readonly state: 'rejected' | 'failed';
  readonly reason: JobReason;
  readonly message: string;
}

/** A refusal decided by the update client itself (policy, slots), carried to the job's end. */
export class UpdateRefusedError extends Error {
  readonly refusal: UpdateRefusal;

  constructor(refusal: UpdateRefusal) {
    super(refusal.message);
    this.refusal = refusal;
  }
}

/** Network trouble worth another attempt (the download resumes where it stopped). */
export function isRetryable(error: unknown): boolean {
  if (error instanceof DownloadHTTPError) return error.statusCode >= 500 || error.statusCode === 408 || error.statusCode === 429;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH|ECONNABORTED|ERR_STREAM_PREMATURE_CLOSE|FW_DOWNLOAD_ABORTED)$/.test(code);
}

const RULES: readonly { readonly test: RegExp; readonly refusal: Omit<UpdateRefusal, 'message'>; readonly why: string }[] = [
  // TUF spec 5.3.11, 5.4.4, 5.5.6, 5.6.5: expired metadata is a freeze attack (or a stale repository): refused.
  { test: /expired/i, refusal: { state: 'rejected', reason: 'signature' }, why: 'freeze: metadata expired' },
  // TUF spec 5.3.5, 5.4.3, 5.5.5: a lower version than already trusted is a rollback of the metadata.
  { test: /less than current version|Expected version \d+, got/i, refusal: { state: 'rejected', reason: 'rollback' }, why: 'rollback of the update metadata' },
  // Endless data: more bytes than the signed (or configured) length.
  { test: /Max length reached/i, refusal: { state: 'rejected', reason: 'too-large' }, why: 'endless data: more bytes than signed' },
  // Arbitrary software and mix-and-match: signatures below threshold, unknown keys, hashes or versions that do not match what is signed.
  { test: /signed by \d+\/\d+ keys|failed to verify|no signature|signature|Expected hash|Expected length|does not match snapshot version|doesn't match timestamp|Expected '\w+', got/i, refusal: { state: 'rejected', reason: 'signature' }, why: 'does not verify against the trusted root' },
];

/**
 * Maps what tuf-js (or the network) threw to the job's end. tuf-js wraps some failures in a
 * RuntimeError whose message carries the original one, so the mapping reads messages; anything not
 * recognised as a verification failure is a failed download, never an accepted update.
 */
export function classifyUpdateError(error: unknown): UpdateRefusal {
  if (error instanceof UpdateRefusedError) return error.refusal;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof DownloadLengthMismatchError) return { state: 'rejected', reason: 'too-large', message: 'endless data: more bytes than signed' };
  if (error instanceof DownloadHTTPError) {
    if (error.statusCode === 404 || error.statusCode === 410) return { state: 'rejected', reason: 'not-found', message: `the repository has no such file (HTTP ${error.statusCode})` };
    return { state: 'failed', reason: 'download-failed', message: `the repository answered HTTP ${error.statusCode}` };
  }
  for (const rule of RULES) if (rule.test.test(message)) return { ...rule.refusal, message: `${rule.why}: ${message}` };
  return { state: 'failed', reason: 'download-failed', message };
}
