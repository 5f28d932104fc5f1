import { tripped, type Tripwire } from '../detection/tripwires.js';
import type { CloudWindow } from './window-metrics.js';

export type ConnectOutcome = 'accepted' | 'authn-failure' | 'authz-failure' | 'throttled';
export type Direction = 'in' | 'out';

/** Devices tracked at once; beyond it new devices are not counted (and `overflow` says how often). */
export const MAX_TRACKED_DEVICES = 500_000;
/** Source addresses listed per device per window. */
export const MAX_SOURCES_LISTED = 16;
/** Distinct source addresses counted exactly per device per window; beyond it each further attempt counts one. */
const MAX_SOURCES_COUNTED = 256;
/** Live sessions' addresses kept per certificate. */
const MAX_ADDRESSES_PER_CERTIFICATE = 16;

interface Counters {
  connectAttempts: number;
  authnFailures: number;
  authzFailures: number;
  disconnects: number;
  disconnectedMs: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  messageSizeMax: number;
  sources: Set<string>;
  sourceOverflow: number;
  certificateAddressesMax: number;
  certificateAddresses: readonly string[];
}

/** What outlives a window: whether the device is connected, since when it is not. */
interface Presence {
  live: number;
  /** Epoch ms of the disconnect that left the device with no session; null while connected. */
  disconnectedSince: number | null;
}

/**
 * The gateway's view of each device, counted per window (rule 5, cloud-side metrics): connection
 * attempts and their refusals, policy denials, disconnects and time disconnected, messages and
 * bytes each way, message sizes, source addresses, and one certificate live from several
 * addresses at once. Every call is O(1) and memory is bounded; `drain` hands the window over.
 * Attempts that name no known thing (an unknown certificate) count in `unattributed`.
 */
export class CloudMetrics {
  #counters = new Map<string, Counters>();
  readonly #presence = new Map<string, Presence>();
  /** Per certificate serial: its thing, and live session count per source address. */
  readonly #certificates = new Map<string, { readonly thing: string; readonly addresses: Map<string, number> }>();
  #windowStart: number;
  #unattributed = { connectAttempts: 0, authnFailures: 0 };
  #overflow = 0;
  /** Immediate behaviours per thing, and what is told when one trips (once per window each). */
  #tripwires = new Map<string, readonly Tripwire[]>();
  #groupTripwires: ReadonlyMap<string, readonly Tripwire[]> = new Map();
  #onTrip: ((thing: string, wire: Tripwire, observed: number) => void) | null = null;
  #trippedBy = new Map<string, Set<Tripwire>>();

  constructor(windowStart: Date) {
    this.#windowStart = windowStart.getTime();
  }

  /** A CONNECT reached admission. `thing` is null when the credential names none. */
  connectAttempt(thing: string | null, source: string, outcome: ConnectOutcome): void {
    if (thing === null) {
      this.#unattributed.connectAttempts += 1;
      if (outcome === 'authn-failure') this.#unattributed.authnFailures += 1;
      return;
    }
    const counters = this.#of(thing);
    if (counters === null) return;
    counters.connectAttempts += 1;
    if (outcome === 'authn-failure') counters.authnFailures += 1;
    if (outcome === 'authz-failure') counters.authzFailures += 1;
    addSource(counters, source);
    this.#check(thing, counters);
  }

  /** An authentication failure outside CONNECT (a refused renewal, a bad enrollment proof). */
  authFailure(thing: string | null, source: string): void {
    if (thing === null) {
      this.#unattributed.authnFailures += 1;
      return;
    }
    const counters = this.#of(thing);
    if (counters === null) return;
    counters.authnFailures += 1;
    addSource(counters, source);
    this.#check(thing, counters);
  }

  /** The policy refused the device a publish or subscribe. */
  denied(thing: string): void {
    const counters = this.#of(thing);
    if (counters === null) return;
    counters.authzFailures += 1;
    this.#check(thing, counters);
  }

  /** A session of the device's certificate `serial` from `source` was admitted. */
  connected(thing: string, serial: string, source: string, at: Date): void {
    const counters = this.#of(thing);
    if (counters === null) return;
    const presence = this.#presenceOf(thing);
    if (presence.disconnectedSince !== null) counters.disconnectedMs += at.getTime() - Math.max(presence.disconnectedSince, this.#windowStart);
    presence.disconnectedSince = null;
    presence.live += 1;
    let entry = this.#certificates.get(serial);
    if (entry === undefined) {
      if (this.#certificates.size >= MAX_TRACKED_DEVICES) return;
      entry = { thing, addresses: new Map() };
      this.#certificates.set(serial, entry);
    }
    const { addresses } = entry;
    if (addresses.has(source) || addresses.size < MAX_ADDRESSES_PER_CERTIFICATE) addresses.set(source, (addresses.get(source) ?? 0) + 1);
    noteCertificate(counters, addresses);
  }

  /** A session admitted by `connected` ended. */
  disconnected(thing: string, serial: string, source: string, at: Date): void {
    const addresses = this.#certificates.get(serial)?.addresses;
    const left = (addresses?.get(source) ?? 1) - 1;
    if (addresses !== undefined) {
      if (left > 0) addresses.set(source, left);
      else addresses.delete(source);
      if (addresses.size === 0) this.#certificates.delete(serial);
    }
    const counters = this.#of(thing);
    if (counters === null) return;
    counters.disconnects += 1;
    const presence = this.#presenceOf(thing);
    presence.live = Math.max(0, presence.live - 1);
    if (presence.live === 0) presence.disconnectedSince = at.getTime();
  }

  /** A message the device published (`in`) or was delivered (`out`). */
  message(thing: string, direction: Direction, bytes: number): void {
    const counters = this.#of(thing);
    if (counters === null) return;
    if (direction === 'in') {
      counters.messagesIn += 1;
      counters.bytesIn += bytes;
      if (bytes > counters.messageSizeMax) counters.messageSizeMax = bytes;
      this.#check(thing, counters);
    } else {
      counters.messagesOut += 1;
      counters.bytesOut += bytes;
    }
  }

  /**
   * The immediate behaviours to watch (monitor-windows.ts refreshes them): each trips at most once
   * per window per thing, the moment its count passes the value.
   */
  watch(byThing: ReadonlyMap<string, readonly Tripwire[]>, byGroup: ReadonlyMap<string, readonly Tripwire[]>, onTrip: (thing: string, wire: Tripwire, observed: number) => void): void {
    this.#tripwires = new Map(byThing);
    this.#groupTripwires = byGroup;
    this.#onTrip = onTrip;
  }

  /** A device was admitted with these (effective) groups: it is watched at once, not only from the next refresh. */
  arm(thing: string, groups: readonly string[]): void {
    if (this.#groupTripwires.size === 0 || this.#tripwires.has(thing)) return;
    const wires = [...new Set(groups.flatMap((g) => this.#groupTripwires.get(g) ?? []))];
    if (wires.length > 0) this.#tripwires.set(thing, wires);
  }

  /** O(1) for a device without immediate behaviours (a map lookup). */
  #check(thing: string, counters: Counters): void {
    const wires = this.#tripwires.get(thing);
    if (wires === undefined || this.#onTrip === null) return;
    for (const wire of wires) {
      const observed = tripped(wire, counters);
      if (observed === undefined) continue;
      let fired = this.#trippedBy.get(thing);
      if (fired?.has(wire) === true) continue;
      if (fired === undefined) {
        fired = new Set();
        this.#trippedBy.set(thing, fired);
      }
      fired.add(wire);
      this.#onTrip(thing, wire, observed);
    }
  }

  /** The thing was deleted: forget it. */
  forget(thing: string): void {
    this.#counters.delete(thing);
    this.#presence.delete(thing);
  }

  /**
   * Closes the window at `end` and returns each counted device's metrics (devices that stayed
   * disconnected all window are included: their disconnected time is the metric). Starts the next window.
   */
  drain(end: Date): { readonly devices: ReadonlyMap<string, CloudWindow>; readonly unattributed: { readonly connectAttempts: number; readonly authnFailures: number }; readonly overflow: number } {
    const endMs = end.getTime();
    const devices = new Map<string, CloudWindow>();
    this.#trippedBy = new Map();
    for (const [thing, presence] of this.#presence) {
      if (presence.disconnectedSince !== null && !this.#counters.has(thing)) this.#counters.set(thing, fresh());
    }
    for (const [thing, c] of this.#counters) {
      const presence = this.#presence.get(thing);
      let disconnectedMs = c.disconnectedMs;
      if (presence !== undefined && presence.disconnectedSince !== null) disconnectedMs += endMs - Math.max(presence.disconnectedSince, this.#windowStart);
      devices.set(thing, {
        connectAttempts: c.connectAttempts,
        authnFailures: c.authnFailures,
        authzFailures: c.authzFailures,
        disconnects: c.disconnects,
        disconnectedSeconds: Math.max(0, Math.round(disconnectedMs / 1000)),
        messagesIn: c.messagesIn,
        messagesOut: c.messagesOut,
        bytesIn: c.bytesIn,
        bytesOut: c.bytesOut,
        messageSizeMax: c.messageSizeMax,
        messageSizeMean: c.messagesIn === 0 ? 0 : Math.round(c.bytesIn / c.messagesIn),
        sourceAddressCount: c.sources.size + c.sourceOverflow,
        sourceAddresses: [...c.sources].slice(0, MAX_SOURCES_LISTED),
        certificateAddressesMax: c.certificateAddressesMax,
        certificateAddresses: c.certificateAddresses,
      });
    }
    const result = { devices, unattributed: this.#unattributed, overflow: this.#overflow };
    this.#counters = new Map();
    // Live sessions carry over: a certificate still live from two addresses counts in the next window too.
    for (const { thing, addresses } of this.#certificates.values()) {
      if (addresses.size < 2) continue;
      const counters = this.#of(thing);
      if (counters !== null) noteCertificate(counters, addresses);
    }
    this.#unattributed = { connectAttempts: 0, authnFailures: 0 };
    this.#overflow = 0;
    this.#windowStart = endMs;
    return result;
  }

  /** Devices tracked (for tests and the bound). */
  get size(): number {
    return this.#presence.size;
  }

  #of(thing: string): Counters | null {
    let counters = this.#counters.get(thing);
    if (counters === undefined) {
      if (this.#counters.size >= MAX_TRACKED_DEVICES) {
        this.#overflow += 1;
        return null;
      }
      counters = fresh();
      this.#counters.set(thing, counters);
    }
    return counters;
  }

  #presenceOf(thing: string): Presence {
    let presence = this.#presence.get(thing);
    if (presence === undefined) {
      presence = { live: 0, disconnectedSince: null };
      if (this.#presence.size < MAX_TRACKED_DEVICES) this.#presence.set(thing, presence);
    }
    return presence;
  }
}

function fresh(): Counters {
  return {
    connectAttempts: 0, authnFailures: 0, authzFailures: 0, disconnects: 0, disconnectedMs: 0, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0,
    messageSizeMax: 0, sources: new Set(), sourceOverflow: 0, certificateAddressesMax: 0, certificateAddresses: [],
  };
}

function noteCertificate(counters: Counters, addresses: ReadonlyMap<string, number>): void {
  if (addresses.size <= counters.certificateAddressesMax) return;
  counters.certificateAddressesMax = addresses.size;
  counters.certificateAddresses = [...addresses.keys()];
}

function addSource(counters: Counters, source: string): void {
  if (counters.sources.has(source)) return;
  if (counters.sources.size < MAX_SOURCES_COUNTED) counters.sources.add(source);
  else counters.sourceOverflow += 1;
}
