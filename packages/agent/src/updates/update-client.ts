import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TargetFile } from '@tufjs/models';
import { parsePendingJobs, Topics, type JobUpdate, type UpdateJob } from '@fleetward/protocol';
import type { UpdatesConfig } from '../config/agent-config.js';
import type { UpdateFault } from '../faults/update-faults.js';
import { writePrivateFile } from '../identity/key-file.js';
import type { BatterySource } from '../metrics/battery.js';
import type { TlsIdentity } from '../session/tls-options.js';
import { inMaintenanceWindow, nextWindowOpening } from './maintenance-window.js';
import type { MtlsFetcher } from './mtls-fetcher.js';
import type { SignedRepository } from './signed-repository.js';
import { confirmed, initialSlotState, otherSlot, rolledBack, SlotStateFile, withFinished, type PendingInstall, type Slot, type SlotFirmware, type SlotState } from './slot-state.js';
import { installTrustedRoot } from './trusted-root.js';
import type { SignedRelease } from './update-policy.js';
import { classifyUpdateError, isRetryable, UpdateRefusedError, type UpdateRefusal } from './update-refusal.js';

export type UpdateEvent =
  | { readonly type: 'update'; readonly jobId: string; readonly update: JobUpdate }
  | { readonly type: 'reboot'; readonly jobId: string; readonly slot: Slot; readonly why: 'install' | 'rollback' }
  | { readonly type: 'update-error'; readonly message: string };

export interface UpdateClientDeps {
  readonly thing: string;
  /** The agent's folder: `updates/` (state, TUF metadata, downloads) and `slots/a|b` go in it. */
  readonly home: string;
  readonly config: UpdatesConfig & { readonly trustedRoot: string; readonly hardware: string };
  /** The image the device left the factory with: what slot A runs until the first update. */
  readonly factory: { readonly version: string; readonly securityVersion: number; readonly imagePath: string | null };
  /** The device's mTLS identity, read at each request (the same as the MQTT session's). */
  readonly identity: () => TlsIdentity;
  /** Reports a step durably (on disk when this resolves, delivered with QoS 1 whenever online). */
  readonly report: (jobId: string, update: JobUpdate) => Promise<void>;
  readonly battery: BatterySource;
  /** Restarts the device into the slot the state names (the daemon exits with REBOOT_EXIT_CODE; the simulator restarts the agent). */
  readonly reboot: () => void | Promise<void>;
  /** The application's own check that the new firmware works, after the gateway was reached. */
  readonly healthCheck?: () => boolean | Promise<boolean>;
  readonly faults?: readonly UpdateFault[];
  readonly now?: () => Date;
  /** Waits between download attempts (tests pass one that does not wait). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** At most one `downloading` progress report per this many ms (default 2,000). */
  readonly progressIntervalMs?: number;
  readonly onEvent?: (event: UpdateEvent) => void;
  /** The running firmware changed (confirmed, rolled back, booted on trial): publish the inventory again. */
  readonly onFirmwareChanged?: () => void;
}

/** What the inventory reports about the running firmware. */
export interface RunningFirmwareReport {
  readonly firmwareVersion: string;
  readonly securityVersion: number;
  /** `sha256:<hex>` of the running slot's image, null when there is no image file. */
  readonly imageHash: string | null;
}

export interface UpdateStatus {
  readonly activeSlot: Slot;
  readonly running: SlotFirmware;
  readonly floor: number;
  readonly pending: PendingInstall | null;
  /** Booted into the pending slot, waiting for it to prove healthy. */
  readonly onTrial: boolean;
  readonly currentJob: string | null;
  readonly waitingJobs: readonly string[];
}

type Outcome = 'done' | 'deferred' | 'rebooting';

/**
 * The device's OTA update client (rule 4). Jobs only name a target and a repository; what is
 * installed is decided by the signed TUF metadata (verified by tuf-js from the device's own trusted
 * root) and the device's policy (hardware, security-version floor, semantic version). The image is
 * written to the inactive of two slots, the device reboots into it on trial, and it becomes active
 * only once it reached the gateway and passed its health check; otherwise the previous slot boots
 * again. Every step is reported durably on `$fw/things/{thing}/jobs/{jobId}/update`.
 */
export class UpdateClient {
  readonly #deps: UpdateClientDeps;
  readonly #stateFile: SlotStateFile;
  readonly #faults: ReadonlySet<UpdateFault>;
  /** Created with the first job (see #repository). */
  #fetcher: MtlsFetcher | null = null;
  #state: SlotState;
  #queue: UpdateJob[] = [];
  #current: UpdateJob | null = null;
  #running = false;
  #closed = false;
  /** Set while booted into a pending slot: its health must be proven before this time (ms). */
  #trialDeadline: number | null = null;
  #confirming: Promise<void> | null = null;
  /** Why each waiting job was last reported queued: reported once per reason. */
  readonly #deferred = new Map<string, string>();
  readonly #cancelled = new Set<string>();
  #reports: Promise<void> = Promise.resolve();
  #progress = { url: '', at: 0, total: 0, jobId: '' };
  #imageHash: string | null | undefined;
  #stall: (() => void) | null = null;

  private constructor(deps: UpdateClientDeps, stateFile: SlotStateFile, state: SlotState) {
    this.#deps = deps;
    this.#stateFile = stateFile;
    this.#state = state;
    this.#faults = new Set(deps.faults ?? []);
  }

  /**
   * Opens the update state (creating it from the factory image on first start), installs the
   * trusted root if the device has none yet, and runs the boot step: a device booted into a slot on
   * trial counts the attempt and either waits for its health or, after too many, rolls back.
   */
  static async open(deps: UpdateClientDeps): Promise<UpdateClient> {
    const dir = join(deps.home, 'updates');
    for (const sub of ['tuf', 'partial', 'downloads']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
    await installTrustedRoot(deps.config.trustedRoot, join(dir, 'tuf'));
    const stateFile = new SlotStateFile(join(dir, 'state.json'));
    let state = await stateFile.load();
    if (state === null) {
      const sha256 = deps.factory.imagePath === null ? null : await sha256Hex(deps.factory.imagePath).catch(() => null);
      state = initialSlotState({ version: deps.factory.version, securityVersion: deps.factory.securityVersion, sha256 });
      await stateFile.save(state);
    }
    const client = new UpdateClient(deps, stateFile, state);
    await client.boot();
    return client;
  }

  get #dir(): string {
    return join(this.#deps.home, 'updates');
  }

  /** The "bootloader" step, at every (re)start: a pending slot is tried, at most `maxBootAttempts` times. */
  async boot(): Promise<void> {
    this.#trialDeadline = null;
    this.#imageHash = undefined;
    const pending = this.#state.pending;
    if (pending !== null) {
      const attempts = pending.bootAttempts + 1;
      if (attempts > this.#deps.config.maxBootAttempts) {
        // The previous slot boots: this start already runs it, so no further reboot.
        await this.#rollBack('boot-failed', `the new slot did not confirm in ${this.#deps.config.maxBootAttempts} boots`, false);
        return;
      }
      await this.#save({ ...this.#state, pending: { ...pending, bootAttempts: attempts } });
      this.#trialDeadline = this.#now().getTime() + this.#deps.config.healthTimeoutSeconds * 1000;
    }
    this.#deps.onFirmwareChanged?.();
  }

  /** The agent reached the gateway over mTLS (a CONNACK on the device's certificate): the first half of the health check. */
  gatewayReached(): void {
    if (this.#trialDeadline !== null) this.#confirming ??= this.#confirm().finally(() => (this.#confirming = null));
  }

  /** Resolves once a confirmation (or rollback) under way has finished. */
  async settled(): Promise<void> {
    await this.#confirming;
    while (this.#running) await new Promise((r) => setTimeout(r, 5));
    await this.#reports;
  }

  /** Periodic work: a trial slot past its health deadline is rolled back; waiting jobs are tried again. */
  async tick(now: Date = this.#now()): Promise<void> {
    if (this.#trialDeadline !== null && now.getTime() >= this.#trialDeadline && this.#confirming === null) {
      await this.#rollBack('health-check-failed', `the new slot did not reach the gateway within ${this.#deps.config.healthTimeoutSeconds} s`, true);
    }
    await this.#drain();
  }

  /** Handles a message on the device's jobs topics; true when it was one. */
  receive(topic: string, payload: Buffer): boolean {
    const thing = this.#deps.thing;
    if (topic === Topics.jobsNotify(thing) || topic === Topics.jobs(thing)) {
      try {
        this.offer(parsePendingJobs(payload).jobs);
      } catch (error) {
        this.#emit({ type: 'update-error', message: `a malformed job list was ignored: ${(error as Error).message}` });
      }
      return true;
    }
    if (topic === Topics.jobsRejected(thing)) {
      this.#emit({ type: 'update-error', message: `the gateway refused the job request: ${payload.toString().slice(0, 256)}` });
      return true;
    }
    const prefix = `$fw/things/${thing}/jobs/`;
    const match = topic.startsWith(prefix) ? /^([A-Za-z0-9_-]+)\/update\/(accepted|rejected)$/.exec(topic.slice(prefix.length)) : null;
    if (match === null) return false;
    const [, jobId, answer] = match as unknown as [string, string, string];
    if (answer === 'rejected') {
      // The gateway no longer takes reports for this job (cancelled, timed out): stop it before anything is installed.
      if (this.#current?.jobId === jobId) this.#cancelled.add(jobId);
      this.#queue = this.#queue.filter((j) => j.jobId !== jobId);
      this.#emit({ type: 'update-error', message: `the gateway refused a report for job ${jobId}: ${payload.toString().slice(0, 256)}` });
    }
    return true;
  }

  /** Jobs from the gateway (pushed or asked for): new ones are queued, the ones already handled ignored. */
  offer(jobs: readonly UpdateJob[]): void {
    for (const job of jobs) {
      if (this.#state.finished.some((f) => f.jobId === job.jobId) || this.#state.pending?.jobId === job.jobId || this.#current?.jobId === job.jobId) continue;
      const at = this.#queue.findIndex((j) => j.jobId === job.jobId);
      if (at >= 0) this.#queue[at] = job;
      else this.#queue.push(job);
    }
    void this.#drain();
  }

  /** What runs now, for the inventory: the slot on trial once booted into it, else the active slot. */
  async runningFirmware(): Promise<RunningFirmwareReport> {
    const trial = this.#trialDeadline !== null ? this.#state.pending : null;
    const firmware = trial ?? this.#state.running;
    this.#imageHash ??= await sha256Hex(this.#imagePath(trial?.slot ?? this.#state.active, firmware)).then((hex) => `sha256:${hex}`, () => null);
    return { firmwareVersion: firmware.version, securityVersion: firmware.securityVersion, imageHash: this.#imageHash };
  }

  status(): UpdateStatus {
    return {
      activeSlot: this.#state.active,
      running: this.#state.running,
      floor: this.#state.floor,
      pending: this.#state.pending,
      onTrial: this.#trialDeadline !== null,
      currentJob: this.#current?.jobId ?? null,
      waitingJobs: this.#queue.map((j) => j.jobId),
    };
  }

  /** Stops taking jobs; a job under way stops at its next step (a stalled one at once). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#queue = [];
    this.#stall?.();
    await this.#reports;
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (!this.#closed && this.#state.pending === null && this.#queue.length > 0) {
        const job = this.#queue[0] as UpdateJob;
        const outcome = await this.#run(job);
        if (outcome === 'deferred') break;
        this.#queue = this.#queue.filter((j) => j !== job);
        if (outcome === 'rebooting') break;
      }
    } catch (error) {
      this.#emit({ type: 'update-error', message: (error as Error).message });
    } finally {
      this.#running = false;
    }
  }

  /** One job, as an array of steps: gate, fetch and verify metadata, policy, download and verify, gate, install, reboot. */
  async #run(job: UpdateJob): Promise<Outcome> {
    if (await this.#mustWait(job)) return 'deferred';
    this.#current = job;
    try {
      await this.#report(job.jobId, { state: 'in-progress', step: 'downloading', bytes: 0 });
      if (this.#faults.has('stall-update')) {
        // Fault: the device goes silent mid-update, as a hung one would; the server's timeout must flag it.
        await new Promise<void>((resolve) => (this.#stall = resolve));
        return 'deferred';
      }
      const repository = await this.#repository(job);
      const verified = await this.#verifiedRelease(repository, job);
      if (verified === 'up-to-date') {
        await this.#finish(job.jobId, { state: 'succeeded', message: `already running ${job.target}` });
        return 'done';
      }
      const { release, info } = verified;
      const file = join(this.#dir, 'downloads', `${release.sha256}.${release.target}`);
      if (await repository.cached(info, file)) await this.#report(job.jobId, { state: 'in-progress', step: 'verifying', bytes: release.length, totalBytes: release.length });
      else await this.#download(repository, info, job, release, file);
      this.#checkCancelled(job);
      // The battery may have run down during the download: checked again right before writing a slot.
      if (await this.#mustWait(job)) return 'deferred';
      await this.#report(job.jobId, { state: 'in-progress', step: 'installing' });
      const slot = await this.#install(job, release, file);
      await this.#report(job.jobId, { state: 'in-progress', step: 'rebooting' });
      this.#emit({ type: 'reboot', jobId: job.jobId, slot, why: 'install' });
      await this.#deps.reboot();
      return 'rebooting';
    } catch (error) {
      const refusal = classifyUpdateError(error);
      await this.#finish(job.jobId, { state: refusal.state, reason: refusal.reason, message: refusal.message });
      return 'done';
    } finally {
      this.#current = null;
      this.#cancelled.delete(job.jobId);
    }
  }

  /**
   * The job's signed repository, read through the device's mTLS fetcher (one fetcher per client).
   * The TUF client behind both (tuf-js with @tufjs/models, about 4 MB resident) is loaded here, when
   * a job first needs it: an agent with updates on spends nearly all its life waiting for a job and
   * does not hold it meanwhile.
   */
  async #repository(job: UpdateJob): Promise<SignedRepository> {
    const [{ MtlsFetcher }, { SignedRepository }] = await Promise.all([import('./mtls-fetcher.js'), import('./signed-repository.js')]);
    this.#fetcher ??= new MtlsFetcher({
      identity: this.#deps.identity,
      partialDir: join(this.#dir, 'partial'),
      resumable: (url) => this.#current !== null && url.startsWith(this.#current.targetsUrl),
      onProgress: (url, bytes) => this.#onProgress(url, bytes),
    });
    return new SignedRepository(join(this.#dir, 'tuf'), job, this.#fetcher);
  }

  /** The signed target's release, checked against the device's policy; throws an UpdateRefusedError when refused. */
  async #verifiedRelease(repository: SignedRepository, job: UpdateJob): Promise<{ readonly release: SignedRelease; readonly info: TargetFile } | 'up-to-date'> {
    // The policy compares versions with semver (about 3 MB resident): loaded with the job, like the TUF client.
    const { decideInstall, signedRelease } = await import('./update-policy.js');
    const info = await repository.targetInfo(job.target);
    if (info === null) throw refused('rejected', 'not-found', `${job.target} is not a signed target in the repository`);
    const release = signedRelease(job.target, info.custom, info.hashes, info.length);
    if (typeof release === 'string') throw refused('rejected', 'incompatible', release);
    const decision = decideInstall(release, this.#state.running, { hardware: this.#deps.config.hardware, floor: this.#state.floor, maxArtifactBytes: this.#deps.config.maxArtifactBytes });
    switch (decision.decision) {
      case 'rejected':
        throw refused('rejected', decision.reason, decision.message);
      case 'up-to-date':
        return 'up-to-date';
      case 'install':
        return { release, info };
      default:
        return decision satisfies never;
    }
  }

  async #download(repository: SignedRepository, info: TargetFile, job: UpdateJob, release: SignedRelease, file: string): Promise<void> {
    this.#progress = { url: repository.targetUrl(info), at: this.#now().getTime(), total: release.length, jobId: job.jobId };
    for (let attempt = 1; ; attempt++) {
      try {
        await repository.download(info, file, {
          corrupt: this.#faults.has('corrupt-download'),
          verifying: () => this.#report(job.jobId, { state: 'in-progress', step: 'verifying', bytes: release.length, totalBytes: release.length }),
        });
        return;
      } catch (error) {
        if (!isRetryable(error) || attempt >= this.#deps.config.downloadAttempts || this.#closed) throw error;
        this.#checkCancelled(job);
        this.#emit({ type: 'update-error', message: `download attempt ${attempt} of ${job.target} failed (${(error as Error).message}); resuming` });
        await (this.#deps.sleep ?? defaultSleep)(Math.min(1_000 * 2 ** attempt, 60_000));
      }
    }
  }

  /** Copies the verified image into the inactive slot (temp file, fsync, rename), checks it there, and marks it pending. */
  async #install(job: UpdateJob, release: SignedRelease, file: string): Promise<Slot> {
    const slot = otherSlot(this.#state.active);
    const dir = join(this.#deps.home, 'slots', slot);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const image = join(dir, 'image');
    try {
      await copyFile(file, `${image}.tmp`);
      const handle = await open(`${image}.tmp`, 'r+');
      await handle.sync().finally(() => handle.close());
      await rename(`${image}.tmp`, image);
      if ((await sha256Hex(image)) !== release.sha256) throw new Error('the image in the slot does not match the verified download');
      await writePrivateFile(join(dir, 'release.json'), JSON.stringify({ target: release.target, version: release.version, securityVersion: release.securityVersion, sha256: release.sha256 }));
    } catch (error) {
      throw refused('failed', 'install-failed', `slot ${slot} could not be written: ${(error as Error).message}`);
    }
    await this.#save({ ...this.#state, pending: { slot, jobId: job.jobId, target: release.target, version: release.version, securityVersion: release.securityVersion, sha256: release.sha256, bootAttempts: 0 } });
    await rm(file, { force: true });
    return slot;
  }

  async #confirm(): Promise<void> {
    const pending = this.#state.pending;
    if (pending === null) return;
    await this.#report(pending.jobId, { state: 'in-progress', step: 'confirming' });
    let healthy = !this.#faults.has('boot-failure');
    let why = 'the new slot failed its health check';
    if (healthy && this.#deps.healthCheck) {
      try {
        healthy = await this.#deps.healthCheck();
      } catch (error) {
        healthy = false;
        why = `the health check failed: ${(error as Error).message}`;
      }
    }
    if (!healthy) {
      await this.#rollBack('health-check-failed', why, true);
      return;
    }
    await this.#save(confirmed(this.#state));
    this.#trialDeadline = null;
    this.#imageHash = undefined;
    await this.#report(pending.jobId, { state: 'succeeded', message: `running ${pending.target} in slot ${pending.slot}` });
    this.#deps.onFirmwareChanged?.();
    void this.#drain();
  }

  /** Abandons the pending slot: the previous one stays active (and boots again, when the device is running the new one). */
  async #rollBack(reason: 'boot-failed' | 'health-check-failed', message: string, reboot: boolean): Promise<void> {
    const pending = this.#state.pending;
    if (pending === null) return;
    await this.#save(rolledBack(this.#state));
    this.#trialDeadline = null;
    this.#imageHash = undefined;
    await this.#report(pending.jobId, { state: 'failed', reason, message: `${message}; rolled back to slot ${this.#state.active}` });
    this.#deps.onFirmwareChanged?.();
    if (reboot) {
      this.#emit({ type: 'reboot', jobId: pending.jobId, slot: this.#state.active, why: 'rollback' });
      await this.#deps.reboot();
    }
  }

  /** Whether the job must wait (outside the maintenance window, battery low): reported `queued` once per reason. */
  async #mustWait(job: UpdateJob): Promise<boolean> {
    const { maintenanceWindow, minBatteryPercent } = this.#deps.config;
    let wait: { reason: 'maintenance-window' | 'battery-low'; message: string } | null = null;
    const now = this.#now();
    if (!inMaintenanceWindow(maintenanceWindow, now)) {
      wait = { reason: 'maintenance-window', message: `waits for the maintenance window ${maintenanceWindow?.start}–${maintenanceWindow?.end} UTC (opens ${nextWindowOpening(maintenanceWindow, now).toISOString()})` };
    }
    else {
      const battery = await this.#deps.battery();
      // Rule 6: a flat battery in the middle of writing a slot bricks a device.
      if (battery !== null && battery < minBatteryPercent) wait = { reason: 'battery-low', message: `battery at ${battery} %, updates wait for ${minBatteryPercent} %` };
    }
    if (wait === null) {
      this.#deferred.delete(job.jobId);
      return false;
    }
    if (this.#deferred.get(job.jobId) !== wait.reason) {
      this.#deferred.set(job.jobId, wait.reason);
      await this.#report(job.jobId, { state: 'queued', reason: wait.reason, message: wait.message });
    }
    return true;
  }

  #checkCancelled(job: UpdateJob): void {
    if (this.#cancelled.has(job.jobId) || this.#closed) throw refused('failed', 'cancelled', 'the job was cancelled before anything was installed');
  }

  async #finish(jobId: string, update: Omit<JobUpdate, 'v'> & { state: 'succeeded' | 'failed' | 'rejected' }): Promise<void> {
    await this.#save(withFinished(this.#state, { jobId, state: update.state }));
    this.#deferred.delete(jobId);
    await this.#report(jobId, update);
  }

  /** Reports keep their order (progress before `verifying` before `installing` ...): each waits for the one before. */
  #report(jobId: string, update: Omit<JobUpdate, 'v'>): Promise<void> {
    const message: JobUpdate = { v: 1, ...update, ...(update.message !== undefined && { message: update.message.slice(0, 512) }) };
    this.#emit({ type: 'update', jobId, update: message });
    const next = this.#reports.then(() => this.#deps.report(jobId, message));
    this.#reports = next.catch((error: unknown) => this.#emit({ type: 'update-error', message: `a job report could not be queued: ${(error as Error).message}` }));
    return next;
  }

  #onProgress(url: string, bytes: number): void {
    const p = this.#progress;
    if (url !== p.url) return;
    const now = this.#now().getTime();
    if (bytes < p.total && now - p.at < (this.#deps.progressIntervalMs ?? 2_000)) return;
    p.at = now;
    void this.#report(p.jobId, { state: 'in-progress', step: 'downloading', bytes, totalBytes: p.total }).catch(() => undefined);
  }

  #imagePath(slot: Slot, firmware: SlotFirmware): string {
    // The factory image lives where the configuration says until a first update has filled a slot.
    if (firmware.target === null) return this.#deps.factory.imagePath ?? join(this.#deps.home, 'slots', slot, 'image');
    return join(this.#deps.home, 'slots', slot, 'image');
  }

  async #save(state: SlotState): Promise<void> {
    await this.#stateFile.save(state);
    this.#state = state;
  }

  #now(): Date {
    return this.#deps.now ? this.#deps.now() : new Date();
  }

  #emit(event: UpdateEvent): void {
    this.#deps.onEvent?.(event);
  }
}

function refused(state: UpdateRefusal['state'], reason: UpdateRefusal['reason'], message: string): UpdateRefusedError {
  return new UpdateRefusedError({ state, reason, message });
}

async function sha256Hex(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
