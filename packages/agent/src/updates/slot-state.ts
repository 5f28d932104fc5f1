import { readFile } from 'node:fs/promises';
import { FleetwardError } from '@fleetward/protocol';
import { writePrivateFile } from '../identity/key-file.js';

export type Slot = 'a' | 'b';

export function otherSlot(slot: Slot): Slot {
  return slot === 'a' ? 'b' : 'a';
}

/** What one slot holds. */
export interface SlotFirmware {
  readonly version: string;
  readonly securityVersion: number;
  /** Hex SHA-256 of the image as installed (from the signed target), or null for a factory image never hashed. */
  readonly sha256: string | null;
  /** The TUF target it came from, null for the factory image. */
  readonly target: string | null;
}

/** An installed slot waiting to prove itself: booted into on trial, made active only once healthy. */
export interface PendingInstall extends SlotFirmware {
  readonly slot: Slot;
  readonly jobId: string;
  readonly target: string;
  /** Boots of the new slot so far that have not confirmed. */
  readonly bootAttempts: number;
}

export interface FinishedJob {
  readonly jobId: string;
  readonly state: 'succeeded' | 'failed' | 'rejected';
}

/**
 * The device's A/B state, what a bootloader's environment would hold: the active slot and what
 * it runs, the anti-rollback floor (the highest security version ever run: it only rises), the
 * install on trial, and the last jobs finished (so a job the gateway lists again is not redone).
 */
export interface SlotState {
  readonly v: 1;
  readonly active: Slot;
  readonly running: SlotFirmware;
  readonly floor: number;
  readonly pending: PendingInstall | null;
  readonly finished: readonly FinishedJob[];
}

const KEEP_FINISHED = 32;

export function initialSlotState(factory: { readonly version: string; readonly securityVersion: number; readonly sha256: string | null }): SlotState {
  return { v: 1, active: 'a', running: { ...factory, target: null }, floor: factory.securityVersion, pending: null, finished: [] };
}

/** A job's end, remembered (the newest few). */
export function withFinished(state: SlotState, job: FinishedJob): SlotState {
  return { ...state, finished: [...state.finished.filter((f) => f.jobId !== job.jobId), job].slice(-KEEP_FINISHED) };
}

/** The trial slot becomes the active one; the floor rises to what it runs (TUF/Uptane: never below what has run). */
export function confirmed(state: SlotState): SlotState {
  const p = state.pending;
  if (p === null) return state;
  const running: SlotFirmware = { version: p.version, securityVersion: p.securityVersion, sha256: p.sha256, target: p.target };
  return withFinished({ ...state, active: p.slot, running, floor: Math.max(state.floor, p.securityVersion), pending: null }, { jobId: p.jobId, state: 'succeeded' });
}

/** The trial slot is abandoned: the previous slot, still active, is what boots. */
export function rolledBack(state: SlotState): SlotState {
  const p = state.pending;
  if (p === null) return state;
  return withFinished({ ...state, pending: null }, { jobId: p.jobId, state: 'failed' });
}

/**
 * The state file: written to a temporary file, fsynced and renamed over the old one, so a power cut
 * at any moment leaves either the old or the new state, never a torn one.
 */
export class SlotStateFile {
  readonly #file: string;

  constructor(file: string) {
    this.#file = file;
  }

  /** The saved state, null on first start. A damaged file is refused: guessing could lower the floor. */
  async load(): Promise<SlotState | null> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    try {
      return parseSlotState(JSON.parse(text));
    } catch (error) {
      throw new FleetwardError('FW_ERR_CONFIG_INVALID', `the update state ${this.#file} is damaged: ${(error as Error).message}`, { file: this.#file });
    }
  }

  async save(state: SlotState): Promise<void> {
    await writePrivateFile(this.#file, JSON.stringify(state));
  }
}

function parseSlotState(value: unknown): SlotState {
  const o = value as Partial<SlotState> | null;
  const slot = (s: unknown): s is Slot => s === 'a' || s === 'b';
  const firmware = (f: unknown): f is SlotFirmware => {
    const x = f as Partial<SlotFirmware> | null;
    return typeof x === 'object' && x !== null && typeof x.version === 'string' && Number.isSafeInteger(x.securityVersion) && (x.sha256 === null || typeof x.sha256 === 'string') && (x.target === null || typeof x.target === 'string');
  };
  if (o === null || typeof o !== 'object' || o.v !== 1 || !slot(o.active) || !firmware(o.running) || !Number.isSafeInteger(o.floor) || !Array.isArray(o.finished)) throw new Error('unexpected shape');
  const p = o.pending;
  if (p !== null && (!firmware(p) || !slot(p?.slot) || typeof p.jobId !== 'string' || !Number.isSafeInteger(p.bootAttempts))) throw new Error('unexpected pending install');
  return o as SlotState;
}
