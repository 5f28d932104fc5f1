import type { Store } from '../store/store.js';
import type { DeviceDetectionState } from './detection/detection-state.js';

const BATCH = 500;

/** Detection's per-device memory (learned ports and addresses, baselines, alarm counters), kept across restarts. */
export class DetectionStateStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async load(): Promise<Map<string, DeviceDetectionState>> {
    const rows = await this.#store.db.selectFrom('detection_state').select(['thing', 'state']).execute();
    return new Map(rows.map((r) => [r.thing, JSON.parse(r.state) as DeviceDetectionState]));
  }

  async save(states: Iterable<readonly [string, DeviceDetectionState]>, at: Date): Promise<number> {
    const updatedAt = at.toISOString();
    let batch: { thing: string; state: string; updated_at: string }[] = [];
    let saved = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      await this.#store.db
        .insertInto('detection_state')
        .values(batch)
        .onConflict((oc) => oc.column('thing').doUpdateSet((eb) => ({ state: eb.ref('excluded.state'), updated_at: eb.ref('excluded.updated_at') })))
        .execute();
      saved += batch.length;
      batch = [];
    };
    for (const [thing, state] of states) {
      batch.push({ thing, state: JSON.stringify(state), updated_at: updatedAt });
      if (batch.length >= BATCH) await flush();
    }
    await flush();
    return saved;
  }

  async forget(thing: string): Promise<void> {
    await this.#store.db.deleteFrom('detection_state').where('thing', '=', thing).execute();
  }
}
