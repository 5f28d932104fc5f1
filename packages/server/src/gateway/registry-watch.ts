import type { Store } from '../store/store.js';

/** What changed in the registry that live connections must follow. */
export interface RegistryChanges {
  readonly revokedSerials: readonly string[];
  /** Things whose lifecycle state changed, with the new state. */
  readonly things: readonly { readonly name: string; readonly state: string }[];
  /** Third-party CAs deregistered: their devices' connections must close. */
  readonly retiredCas: readonly string[];
  /** The CAs devices may chain to changed (a rotation, a registration): the listener's trust must follow. */
  readonly trustChanged: boolean;
}

/** Writers' clocks may differ a little (other nodes, the CLI): changes are looked for this far back. */
const SKEW_MS = 60_000;

/**
 * Polls the database for revocations, lifecycle changes and deregistered CAs made by any process —
 * this node, another node, the CLI on the data folder — so a revoked or suspended device is
 * disconnected everywhere within one interval, with or without a message bus. Each change is
 * reported once.
 */
export class RegistryWatch {
  readonly #store: Store;
  readonly #seenSerials = new Map<string, string>();
  readonly #seenThings = new Map<string, string>();
  readonly #retired = new Set<string>();
  #trusted = '';
  #since = '';

  constructor(store: Store) {
    this.#store = store;
  }

  /** Starts from now: changes made before the gateway started concern connections it never had. */
  async begin(now: Date): Promise<void> {
    this.#since = now.toISOString();
    for (const ca of await this.#retiredCas()) this.#retired.add(ca);
    this.#trusted = await this.#trustedCas();
  }

  async poll(now: Date): Promise<RegistryChanges> {
    const from = new Date(Date.parse(this.#since) - SKEW_MS).toISOString();
    const { db } = this.#store;
    const revoked = await db.selectFrom('certificates').select(['serial', 'revoked_at']).where('status', '=', 'revoked').where('revoked_at', '>=', from).execute();
    const things = await db.selectFrom('things').select(['name', 'state', 'state_changed_at']).where('state_changed_at', '>=', from).execute();
    const revokedSerials = revoked.filter((r) => !this.#seenSerials.has(r.serial)).map((r) => r.serial);
    for (const r of revoked) this.#seenSerials.set(r.serial, r.revoked_at ?? from);
    const changed = things.filter((t) => this.#seenThings.get(t.name) !== `${t.state}@${t.state_changed_at}`);
    for (const t of things) this.#seenThings.set(t.name, `${t.state}@${t.state_changed_at}`);
    const retiredCas = (await this.#retiredCas()).filter((id) => !this.#retired.has(id));
    for (const id of retiredCas) this.#retired.add(id);
    const trusted = await this.#trustedCas();
    const trustChanged = trusted !== this.#trusted;
    this.#trusted = trusted;
    this.#since = now.toISOString();
    this.#forgetBefore(from);
    return { revokedSerials, things: changed.map((t) => ({ name: t.name, state: t.state })), retiredCas, trustChanged };
  }

  /** The active issuing and third-party CAs, as one comparable string. */
  async #trustedCas(): Promise<string> {
    const rows = await this.#store.db.selectFrom('certificate_authorities').select('id').where('role', 'in', ['issuing', 'external']).where('status', '=', 'active').orderBy('id').execute();
    return rows.map((r) => r.id).join(',');
  }

  async #retiredCas(): Promise<string[]> {
    return (await this.#store.db.selectFrom('certificate_authorities').select('id').where('role', '=', 'external').where('status', '=', 'retired').execute()).map((r) => r.id);
  }

  /** Bounded memory: what is older than the look-back window cannot come back. */
  #forgetBefore(from: string): void {
    for (const [serial, at] of this.#seenSerials) if (at < from) this.#seenSerials.delete(serial);
    for (const [name, seen] of this.#seenThings) if ((seen.split('@')[1] ?? '') < from) this.#seenThings.delete(name);
  }
}
