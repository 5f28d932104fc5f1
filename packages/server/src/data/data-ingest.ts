import { randomUUID } from 'node:crypto';
import { DEFAULT_JSON_LIMITS, type JsonLimits } from './bounded-json.js';
import { CompiledContract } from './compiled-contract.js';
import { THING_VARIABLE, type DataContract } from './contract.js';
import { ContractCatalog, evaluatePublish, refused, type PublishInput, type Refused, type RefusalReason, type Unseal, type UnmatchedMode } from './evaluate-publish.js';
import type { FieldCrypto } from './field-crypto.js';
import { sealedValueOpener, type SealedKeyLookup } from './sealed-values.js';
import type { SightingKind, TelemetryRecord, TelemetryWriter, VaultEntry } from './telemetry-writer.js';

export type IngestVerdict =
  /** Allowed, with this (minimized) payload; `record` is what was queued for storage (null: nothing stored). */
  | { readonly verdict: 'accept'; readonly payload: Buffer; readonly record: TelemetryRecord | null }
  | Refused;

export interface IngestOptions {
  readonly unmatched: UnmatchedMode;
  readonly limits: JsonLimits;
  /** Values sealed on the device opened at most per message (each costs an X25519 agreement); more refuse it. */
  readonly maxSealedValues: number;
  /** Per-device counters kept at most for this many things (the least recently added are forgotten first). */
  readonly maxCountedThings: number;
}

export const DEFAULT_INGEST_OPTIONS: IngestOptions = { unmatched: 'refuse', limits: DEFAULT_JSON_LIMITS, maxSealedValues: 16, maxCountedThings: 100_000 };

/** What one device published, by outcome (refusals by reason). */
export interface DeviceDataCounters {
  accepted: number;
  unclassified: number;
  refused: number;
  readonly byReason: Partial<Record<RefusalReason, number>>;
}

/** Verdicts of one kind since this process started, node-wide (what the metrics read when scraped). */
export interface VerdictTotal {
  readonly outcome: 'accepted' | 'refused' | 'unclassified';
  /** The refusal reason; 'none' for the other outcomes. */
  readonly reason: RefusalReason | 'none';
  readonly count: number;
}

/** Vault entries this process wrote recently (token → expiry written), so repeated tokens are not re-sealed each message. */
const RECENT_TOKENS = 10_000;
/** Topic shapes remembered for unclassified sightings (forgotten all at once beyond it). */
const MAX_SIGHTING_KINDS = 10_000;

/**
 * Enforcement at ingest: the gateway calls `inspect` on every PUBLISH before fan-out. Reserved
 * `$` topics pass untouched (their own handlers validate them). An application publish is matched
 * to its contract, parsed within bounds, its sealed values opened, validated, minimized and queued for storage; the
 * minimized payload is what subscribers receive. Synchronous and I/O-free: storage is batched
 * behind it by the TelemetryWriter.
 */
export class DataIngest {
  readonly #crypto: FieldCrypto;
  readonly #writer: TelemetryWriter;
  readonly #options: IngestOptions;
  readonly #evaluation: { readonly unmatched: UnmatchedMode; readonly limits: JsonLimits; readonly unseal: Unseal };
  #catalog = new ContractCatalog([]);
  readonly #counters = new Map<string, DeviceDataCounters>();
  /** Node-wide verdict counts: plain fields on the per-message path, labelled series only when scraped. */
  readonly #totals = { accepted: 0, unclassified: 0, refused: new Map<RefusalReason, number>() };
  readonly #recentTokens = new Map<string, number>();
  /** Sighting kinds by topic, then thing (asked for every unclassified message: nested maps, no key built per message). */
  readonly #sightingKinds = new Map<string, Map<string, { passed?: SightingKind; refused?: SightingKind }>>();
  #sightingKindCount = 0;
  /**
   * The last sighting and counters looked up: a device's publishes arrive in bursts (one socket read
   * holds several), and a repeat of the last thing and topic then skips hashing a new topic string.
   */
  #lastSightingTopic = '';
  #lastSightingThing = '';
  #lastSighting: SightingKind | null = null;
  #lastCountedThing = '';
  #lastCounters: DeviceDataCounters | null = null;

  constructor(deps: { readonly crypto: FieldCrypto; readonly writer: TelemetryWriter; readonly sealing: SealedKeyLookup }, options: Partial<IngestOptions> = {}) {
    this.#crypto = deps.crypto;
    this.#writer = deps.writer;
    this.#options = { ...DEFAULT_INGEST_OPTIONS, ...options };
    const { unmatched, limits, maxSealedValues } = this.#options;
    this.#evaluation = { unmatched, limits, unseal: sealedValueOpener(deps.sealing, limits, maxSealedValues) };
  }

  /** Puts contract versions in force (compiled once, here). */
  setContracts(contracts: readonly DataContract[]): void {
    this.#catalog = new ContractCatalog(contracts.map((c) => new CompiledContract(c, this.#crypto)));
  }

  get contracts(): readonly DataContract[] {
    return this.#catalog.contracts.map((c) => c.contract);
  }

  inspect(input: PublishInput): IngestVerdict {
    if (input.topic.startsWith('$')) return { verdict: 'accept', payload: input.payload, record: null };
    const evaluation = evaluatePublish(this.#catalog, input, this.#evaluation);
    switch (evaluation.verdict) {
      case 'refuse':
        if (evaluation.reason === 'no-contract') this.#writer.noteUnclassified(this.#sighting(input, 'refused'), input.receivedAtMs);
        this.#countRefusal(input.thing, evaluation.reason);
        return evaluation;
      case 'unclassified':
        this.#writer.noteUnclassified(this.#sighting(input, 'passed'), input.receivedAtMs);
        this.#count(input.thing, 'unclassified');
        return { verdict: 'accept', payload: input.payload, record: null };
      case 'accept': {
        const receivedAt = new Date(input.receivedAtMs).toISOString();
        const { contract } = evaluation.contract;
        const vault: VaultEntry[] = [];
        for (const t of evaluation.tokens) {
          const expiresMs = input.receivedAtMs + t.retentionSeconds * 1000;
          const written = this.#recentTokens.get(t.token);
          // Re-written only when its expiry moves by a tenth of the retention (at most a day).
          if (written !== undefined && expiresMs - written < Math.min(t.retentionSeconds * 100, 86_400_000)) continue;
          vault.push({ token: t.token, field: t.field, sealed: this.#crypto.sealTokenValue(t.token, t.value), expiresAt: new Date(expiresMs).toISOString() });
          this.#remember(t.token, expiresMs);
        }
        const record: TelemetryRecord = { messageId: randomUUID(), thing: input.thing, thingType: input.thingType, topic: input.topic, contract: contract.name, version: contract.version, receivedAt, groups: evaluation.groups, vault };
        if (!this.#writer.enqueue(record)) {
          for (const v of vault) this.#recentTokens.delete(v.token);
          const backlog = refused('FW_ERR_DATA_BACKLOG', 'backlog', 'the telemetry store is behind; try again later');
          this.#countRefusal(input.thing, 'backlog');
          return backlog;
        }
        this.#count(input.thing, 'accepted');
        return { verdict: 'accept', payload: Buffer.from(evaluation.payloadJson), record };
      }
    }
  }

  /** Counters of one device, or null if it published nothing (since this process started). */
  countersOf(thing: string): Readonly<DeviceDataCounters> | null {
    return this.#counters.get(thing) ?? null;
  }

  /** Verdicts since this process started, by outcome and refusal reason (kinds seen so far only). */
  verdictTotals(): readonly VerdictTotal[] {
    const { accepted, unclassified, refused: byReason } = this.#totals;
    const totals: VerdictTotal[] = [];
    if (accepted > 0) totals.push({ outcome: 'accepted', reason: 'none', count: accepted });
    if (unclassified > 0) totals.push({ outcome: 'unclassified', reason: 'none', count: unclassified });
    for (const [reason, count] of byReason) totals.push({ outcome: 'refused', reason, count });
    return totals;
  }

  /** Every counted device (for metrics and the monitor). */
  allCounters(): ReadonlyMap<string, Readonly<DeviceDataCounters>> {
    return this.#counters;
  }

  #count(thing: string, outcome: 'accepted' | 'unclassified'): void {
    this.#countersOf(thing)[outcome] += 1;
    this.#totals[outcome] += 1;
  }

  #countRefusal(thing: string, reason: RefusalReason): void {
    const counters = this.#countersOf(thing);
    counters.refused += 1;
    (counters.byReason as Record<string, number>)[reason] = (counters.byReason[reason] ?? 0) + 1;
    this.#totals.refused.set(reason, (this.#totals.refused.get(reason) ?? 0) + 1);
  }

  #countersOf(thing: string): DeviceDataCounters {
    if (this.#lastCounters !== null && this.#lastCountedThing === thing) return this.#lastCounters;
    let counters = this.#counters.get(thing);
    if (counters === undefined) {
      if (this.#counters.size >= this.#options.maxCountedThings) this.#counters.delete(this.#counters.keys().next().value as string);
      counters = { accepted: 0, unclassified: 0, refused: 0, byReason: {} };
      this.#counters.set(thing, counters);
    }
    // Always the thing looked up last: only adding another thing can forget it, and that replaces it here.
    this.#lastCountedThing = thing;
    this.#lastCounters = counters;
    return counters;
  }

  #remember(token: string, expiresMs: number): void {
    this.#recentTokens.delete(token);
    if (this.#recentTokens.size >= RECENT_TOKENS) this.#recentTokens.delete(this.#recentTokens.keys().next().value as string);
    this.#recentTokens.set(token, expiresMs);
  }

  /** Grouped per thing type and topic shape, not per device; each topic's shape is worked out once. */
  #sighting(input: PublishInput, outcome: 'refused' | 'passed'): SightingKind {
    const thingType = input.thingType ?? '';
    const last = this.#lastSighting;
    if (last !== null && this.#lastSightingThing === input.thing && last.outcome === outcome && last.thingType === thingType && this.#lastSightingTopic === input.topic) return last;
    const kind = this.#sightingKind(input, outcome, thingType);
    this.#lastSightingTopic = input.topic;
    this.#lastSightingThing = input.thing;
    this.#lastSighting = kind;
    return kind;
  }

  #sightingKind(input: PublishInput, outcome: 'refused' | 'passed', thingType: string): SightingKind {
    let byThing = this.#sightingKinds.get(input.topic);
    const known = byThing?.get(input.thing)?.[outcome];
    if (known !== undefined && known.thingType === thingType) return known;
    const topic = input.topic
      .split('/')
      .map((level) => (level === input.thing ? THING_VARIABLE : level))
      .join('/')
      .slice(0, 256);
    const kind: SightingKind = { key: `${thingType}\0${topic}\0${outcome}`, thingType, topic, outcome };
    if (this.#sightingKindCount >= MAX_SIGHTING_KINDS) {
      this.#sightingKinds.clear();
      this.#sightingKindCount = 0;
      byThing = undefined;
    }
    if (byThing === undefined) {
      byThing = new Map();
      this.#sightingKinds.set(input.topic, byThing);
    }
    const kinds = byThing.get(input.thing) ?? {};
    if (kinds[outcome] === undefined) this.#sightingKindCount += 1;
    kinds[outcome] = kind;
    byThing.set(input.thing, kinds);
    return kind;
  }
}
