import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Job } from '../jobs/scheduler.js';
import type { Store } from '../store/store.js';
import { DEFAULT_DATA_GRANTS, type DataGrants } from './classification.js';
import { DataAccess } from './data-access.js';
import { DataContracts } from './data-contracts.js';
import { DataIngest, type IngestOptions } from './data-ingest.js';
import { collectInventory, type Inventory } from './data-inventory.js';
import { loadDataKeys, type KeySealer } from './data-keys.js';
import { DataRetention, type RetentionOptions } from './data-retention.js';
import type { DeliveryOptions } from './data-webhook-delivery.js';
import { DataWebhooks } from './data-webhooks.js';
import { FieldSpecIndex } from './disclosure.js';
import { FieldCrypto } from './field-crypto.js';
import { SealingKeys } from './sealing-keys.js';
import { DEFAULT_WRITER_OPTIONS, TelemetryWriter, type WriterOptions } from './telemetry-writer.js';

export interface DataDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  /** The node's key ring: seals the pseudonym, vault and sealing keys like CA keys. */
  readonly keyRing: KeySealer;
  /** A batch of telemetry could not be written (the store is down): log it. */
  readonly onWriteError?: (error: unknown, lostMessages: number) => void;
}

export interface DataOptions {
  readonly ingest?: Partial<IngestOptions>;
  readonly writer?: Partial<WriterOptions>;
  readonly retention?: Partial<RetentionOptions>;
  readonly grants?: DataGrants;
  /** Data webhook delivery limits, and how often the node delivers (milliseconds). */
  readonly webhooks?: Partial<DeliveryOptions> & { readonly everyMs?: number };
}

/** Rule 9: data contracts, enforcement at ingest, minimized storage, retention, purpose-bound reads, the inventory. */
export interface DataServices {
  readonly contracts: DataContracts;
  readonly ingest: DataIngest;
  readonly access: DataAccess;
  readonly retention: DataRetention;
  readonly writer: TelemetryWriter;
  /** The backend keys devices seal local data to; ingest opens sealed values with them. */
  readonly sealing: SealingKeys;
  /** Consumers of the minimized stream over signed webhooks, and their delivery. */
  readonly webhooks: DataWebhooks;
  readonly grants: DataGrants;
  inventory(unreadDays?: number): Promise<Inventory>;
  /** Puts the newest contract versions in force if any were applied (here, by the CLI or on another node). */
  refresh(): Promise<boolean>;
  /** Background work for the node's scheduler: contract refresh, retention, sealing-key refresh, webhook delivery. */
  jobs(): Job[];
  /** Writes everything queued (call before closing the store). */
  flush(): Promise<void>;
  /** Writes everything queued and stops the telemetry writer's thread. */
  close(): Promise<void>;
}

/** Opens the data services: loads (or creates) the sealed data keys, loads the sealing keys and puts the contracts in force. */
export async function openDataServices(deps: DataDependencies, options: DataOptions = {}): Promise<DataServices> {
  const { store, audit, clock } = deps;
  const grants = options.grants ?? DEFAULT_DATA_GRANTS;
  const crypto = new FieldCrypto(await loadDataKeys(store, deps.keyRing, clock));
  const contracts = new DataContracts({ store, audit, clock });
  const writer = new TelemetryWriter(store, { ...DEFAULT_WRITER_OPTIONS, ...options.writer }, deps.onWriteError ?? (() => undefined));
  const sealing = new SealingKeys({ store, sealer: deps.keyRing, clock, audit });
  await sealing.refresh();
  const ingest = new DataIngest({ crypto, writer, sealing }, options.ingest);
  const access = new DataAccess({ store, audit, clock, contracts, crypto, grants });
  const { everyMs: webhookEveryMs = 1000, ...delivery } = options.webhooks ?? {};
  const webhooks = new DataWebhooks({ store, audit, clock, sealer: deps.keyRing, specs: new FieldSpecIndex(contracts), grants }, delivery);
  const retention = new DataRetention({ store, audit, clock, flushWrites: () => writer.flush() }, options.retention);
  let stamp = -1;
  const refresh = async (): Promise<boolean> => {
    const current = await contracts.stamp();
    if (current === stamp) return false;
    ingest.setContracts(await contracts.active());
    stamp = current;
    return true;
  };
  contracts.onChange(refresh);
  await refresh();
  return {
    contracts,
    ingest,
    access,
    retention,
    writer,
    sealing,
    webhooks,
    grants,
    inventory: (unreadDays = 30) => collectInventory({ store, clock, contracts, grants, consumers: () => webhooks.list() }, unreadDays),
    refresh,
    jobs: () => [
      { name: 'data.contracts-refresh', everyMs: 30_000, run: refresh },
      { name: 'data.retention', everyMs: 10 * 60_000, run: () => retention.run() },
      // Sealing keys rotated on another node open here too (an unknown key id also triggers a reload).
      { name: 'data.sealing-keys-refresh', everyMs: 30_000, run: () => sealing.refresh() },
      // Polls the store for what was committed since each consumer's cursor (cheap when idle: one read per consumer).
      { name: 'data.webhooks', everyMs: webhookEveryMs, run: () => webhooks.deliver() },
    ],
    flush: () => writer.flush(),
    close: () => writer.close(),
  };
}
