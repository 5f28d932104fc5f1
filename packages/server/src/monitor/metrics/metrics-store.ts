import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock.js';
import type { Store } from '../../store/store.js';
import type { MonitorWindowsTable } from '../../store/tables.js';
import { sql } from 'kysely';
import { parseCustomDeclaration, type CustomMetricDeclaration } from './custom-metrics.js';
import type { CustomValue, MetricKind, WindowMetrics } from './window-metrics.js';

/** Rows per INSERT: 37 columns each stays far below both dialects' bind-parameter limits. */
const BATCH = 400;
const MAX_WINDOWS_READ = 10_080;
const SUMMED = ['connect_attempts', 'authn_failures', 'authz_failures', 'disconnects', 'messages_in', 'messages_out', 'bytes_in', 'bytes_out', 'source_address_count'] as const;
type SummedColumn = (typeof SUMMED)[number];
const DEVICE_VALUES = [
  'listening_total', 'established', 'device_bytes_in', 'device_bytes_out', 'packets_in', 'packets_out', 'processes', 'memory_used_bytes', 'disk_used_bytes',
  'uptime_seconds', 'agent_restarts', 'device_auth_failures', 'cpu_percent', 'battery_percent', 'listening', 'destinations',
] as const;
type DeviceColumn = (typeof DEVICE_VALUES)[number];

/** Sums, maxima and device counts of a group's windows, one entry per window. */
export interface GroupWindowAggregate {
  readonly windowStart: string;
  readonly devices: number;
  readonly reporting: number;
  readonly connectAttempts: number;
  readonly authnFailures: number;
  readonly authzFailures: number;
  readonly disconnects: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly messageSizeMax: number;
  readonly listeningTotalMax: number | null;
  readonly cpuPercentMean: number | null;
}

/**
 * Stored security metrics (rule 5): one row per device per window, written by the node that saw
 * the device; read per device or aggregated per group; deleted after the retention period. Also
 * the custom metrics each thing type declares.
 */
export class MetricsStore {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock };

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock }) {
    this.#deps = deps;
  }

  /** Writes a window's rows; a row already there (another node of a cluster saw the device in the same window) is merged: counts add up, maxima stay maxima, the latest device report wins. */
  async write(windows: readonly WindowMetrics[]): Promise<void> {
    const { db } = this.#deps.store;
    for (let i = 0; i < windows.length; i += BATCH) {
      const rows = windows.slice(i, i + BATCH).map(rowOf);
      await db
        .insertInto('monitor_windows')
        .values(rows)
        .onConflict((oc) => oc.columns(['thing', 'window_start']).doUpdateSet(this.#merge()))
        .execute();
    }
  }

  /** The upsert's merge of a row with the one another node wrote for the same device and window. */
  #merge() {
    const { dialect } = this.#deps.store;
    const larger = dialect === 'sqlite' ? 'max' : 'greatest';
    const smaller = dialect === 'sqlite' ? 'min' : 'least';
    const add = (column: SummedColumn) => sql<number>`${sql.ref(`monitor_windows.${column}`)} + ${sql.ref(`excluded.${column}`)}`;
    const pick = (fn: string, column: string) => sql<number>`${sql.raw(fn)}(${sql.ref(`monitor_windows.${column}`)}, ${sql.ref(`excluded.${column}`)})`;
    const newer = (column: DeviceColumn) => sql<never>`coalesce(${sql.ref(`excluded.${column}`)}, ${sql.ref(`monitor_windows.${column}`)})`;
    return {
      ...Object.fromEntries(SUMMED.map((column) => [column, add(column)])),
      message_size_max: pick(larger, 'message_size_max'),
      certificate_addresses_max: pick(larger, 'certificate_addresses_max'),
      // A device that moved between nodes was disconnected from each for part of the window.
      disconnected_seconds: pick(smaller, 'disconnected_seconds'),
      message_size_mean: sql<number>`case when ${sql.ref('monitor_windows.messages_in')} + ${sql.ref('excluded.messages_in')} = 0 then 0 else (${sql.ref('monitor_windows.message_size_mean')} * ${sql.ref('monitor_windows.messages_in')} + ${sql.ref('excluded.message_size_mean')} * ${sql.ref('excluded.messages_in')}) / (${sql.ref('monitor_windows.messages_in')} + ${sql.ref('excluded.messages_in')}) end`,
      reported: pick(larger, 'reported'),
      ...Object.fromEntries(DEVICE_VALUES.map((column) => [column, newer(column)])),
      // Custom values come with a report too: the row with the later one wins ('{}' is not "none", so no coalesce).
      custom: sql<string>`case when ${sql.ref('excluded.reported')} = 1 then ${sql.ref('excluded.custom')} else ${sql.ref('monitor_windows.custom')} end`,
    };
  }

  /** A device's windows from `since` (ISO) on, oldest first. */
  async device(thing: string, options: { readonly since: string; readonly until?: string; readonly limit?: number }): Promise<WindowMetrics[]> {
    let query = this.#deps.store.db.selectFrom('monitor_windows').selectAll().where('thing', '=', thing).where('window_start', '>=', options.since);
    if (options.until !== undefined) query = query.where('window_start', '<', options.until);
    const rows = await query.orderBy('window_start').limit(Math.min(options.limit ?? MAX_WINDOWS_READ, MAX_WINDOWS_READ)).execute();
    return rows.map(windowOf);
  }

  /** Per window, the sums and maxima over the devices of a group (and its subgroups). */
  async group(groupName: string, options: { readonly since: string; readonly until?: string }): Promise<GroupWindowAggregate[]> {
    const { db } = this.#deps.store;
    const groups = await db.selectFrom('thing_groups').select(['id', 'name', 'parent_id']).execute();
    const root = groups.find((g) => g.name === groupName);
    if (root === undefined) throw new FleetwardError('FW_ERR_NOT_FOUND', `no group named ${groupName}`);
    const ids = [root.id];
    for (let i = 0; i < ids.length; i += 1) ids.push(...groups.filter((g) => g.parent_id === ids[i]).map((g) => g.id));
    let query = db
      .selectFrom('monitor_windows')
      .where('thing', 'in', db.selectFrom('group_members').innerJoin('things', 'things.id', 'group_members.thing_id').select('things.name').where('group_members.group_id', 'in', ids))
      .where('window_start', '>=', options.since);
    if (options.until !== undefined) query = query.where('window_start', '<', options.until);
    const rows = await query
      .select((eb) => [
        'window_start',
        eb.fn.countAll<number | string>().as('devices'),
        eb.fn.sum<number | string>('reported').as('reporting'),
        eb.fn.sum<number | string>('connect_attempts').as('connect_attempts'),
        eb.fn.sum<number | string>('authn_failures').as('authn_failures'),
        eb.fn.sum<number | string>('authz_failures').as('authz_failures'),
        eb.fn.sum<number | string>('disconnects').as('disconnects'),
        eb.fn.sum<number | string>('messages_in').as('messages_in'),
        eb.fn.sum<number | string>('messages_out').as('messages_out'),
        eb.fn.sum<number | string>('bytes_in').as('bytes_in'),
        eb.fn.sum<number | string>('bytes_out').as('bytes_out'),
        eb.fn.max<number | string>('message_size_max').as('message_size_max'),
        eb.fn.max<number | string | null>('listening_total').as('listening_total_max'),
        eb.fn.avg<number | string | null>('cpu_percent').as('cpu_percent_mean'),
      ])
      .groupBy('window_start')
      .orderBy('window_start')
      .limit(MAX_WINDOWS_READ)
      .execute();
    const num = (v: number | string | null) => (v === null ? 0 : Number(v));
    return rows.map((r) => ({
      windowStart: r.window_start,
      devices: num(r.devices),
      reporting: num(r.reporting),
      connectAttempts: num(r.connect_attempts),
      authnFailures: num(r.authn_failures),
      authzFailures: num(r.authz_failures),
      disconnects: num(r.disconnects),
      messagesIn: num(r.messages_in),
      messagesOut: num(r.messages_out),
      bytesIn: num(r.bytes_in),
      bytesOut: num(r.bytes_out),
      messageSizeMax: num(r.message_size_max),
      listeningTotalMax: r.listening_total_max === null ? null : Number(r.listening_total_max),
      cpuPercentMean: r.cpu_percent_mean === null ? null : Math.round(Number(r.cpu_percent_mean) * 10) / 10,
    }));
  }

  /** Deletes windows that started before now minus the retention; returns how many. */
  async prune(retentionDays: number): Promise<number> {
    const cutoff = new Date(this.#deps.clock.now().getTime() - retentionDays * 86_400_000).toISOString();
    const result = await this.#deps.store.db.deleteFrom('monitor_windows').where('window_start', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Declares (or redeclares) a custom metric of a thing type. */
  async declareCustom(input: { readonly thingType: string; readonly name: string; readonly kind: string; readonly description?: string }, actor: Actor): Promise<CustomMetricDeclaration> {
    const declaration = parseCustomDeclaration(input);
    const { db } = this.#deps.store;
    const type = await db.selectFrom('thing_types').select('name').where('name', '=', declaration.thingType).executeTakeFirst();
    if (type === undefined) throw new FleetwardError('FW_ERR_NOT_FOUND', `no thing type named ${declaration.thingType}`);
    const now = this.#deps.clock.now().toISOString();
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('monitor_custom_metrics')
        .values({ thing_type: declaration.thingType, name: declaration.name, kind: declaration.kind, description: declaration.description, created_at: now, created_by: actor.name })
        .onConflict((oc) => oc.columns(['thing_type', 'name']).doUpdateSet({ kind: declaration.kind, description: declaration.description }))
        .execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'monitor.custom-metric.declare', outcome: 'success', target: `thing-type:${declaration.thingType}`, details: { name: declaration.name, kind: declaration.kind } }]);
    });
    return declaration;
  }

  async removeCustom(thingType: string, name: string, actor: Actor): Promise<void> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const result = await trx.deleteFrom('monitor_custom_metrics').where('thing_type', '=', thingType).where('name', '=', name).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) throw new FleetwardError('FW_ERR_NOT_FOUND', `${thingType} declares no custom metric ${name}`);
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'monitor.custom-metric.remove', outcome: 'success', target: `thing-type:${thingType}`, details: { name } }]);
    });
  }

  async listCustom(thingType?: string): Promise<CustomMetricDeclaration[]> {
    let query = this.#deps.store.db.selectFrom('monitor_custom_metrics').select(['thing_type', 'name', 'kind', 'description']);
    if (thingType !== undefined) query = query.where('thing_type', '=', thingType);
    const rows = await query.orderBy('thing_type').orderBy('name').execute();
    return rows.map((r) => ({ thingType: r.thing_type, name: r.name, kind: r.kind as MetricKind, description: r.description }));
  }

  /** Every declaration, by thing type then name (what ingestion validates against). */
  async customDeclarations(): Promise<Map<string, Map<string, MetricKind>>> {
    const byType = new Map<string, Map<string, MetricKind>>();
    for (const d of await this.listCustom()) {
      let names = byType.get(d.thingType);
      if (names === undefined) {
        names = new Map<string, MetricKind>();
        byType.set(d.thingType, names);
      }
      names.set(d.name, d.kind);
    }
    return byType;
  }
}

function rowOf(w: WindowMetrics): MonitorWindowsTable {
  const { cloud: c, device: d } = w;
  return {
    thing: w.thing,
    window_start: w.windowStart,
    window_end: w.windowEnd,
    connect_attempts: c.connectAttempts,
    authn_failures: c.authnFailures,
    authz_failures: c.authzFailures,
    disconnects: c.disconnects,
    disconnected_seconds: c.disconnectedSeconds,
    messages_in: c.messagesIn,
    messages_out: c.messagesOut,
    bytes_in: c.bytesIn,
    bytes_out: c.bytesOut,
    message_size_max: c.messageSizeMax,
    source_address_count: c.sourceAddressCount,
    certificate_addresses_max: c.certificateAddressesMax,
    message_size_mean: c.messageSizeMean,
    source_addresses: JSON.stringify(c.sourceAddresses),
    reported: d === null ? 0 : 1,
    listening_total: d?.listeningTotal ?? null,
    established: d?.established ?? null,
    device_bytes_in: d?.bytesIn ?? null,
    device_bytes_out: d?.bytesOut ?? null,
    packets_in: d?.packetsIn ?? null,
    packets_out: d?.packetsOut ?? null,
    processes: d?.processes ?? null,
    memory_used_bytes: d?.memoryUsedBytes ?? null,
    disk_used_bytes: d?.diskUsedBytes ?? null,
    uptime_seconds: d?.uptimeSeconds ?? null,
    agent_restarts: d?.agentRestarts ?? null,
    device_auth_failures: d?.authFailures ?? null,
    cpu_percent: d?.cpuPercent ?? null,
    battery_percent: d?.batteryPercent ?? null,
    listening: d === null ? null : JSON.stringify(d.listening),
    destinations: d === null ? null : JSON.stringify(d.destinations),
    custom: JSON.stringify(w.custom),
  };
}

function windowOf(r: MonitorWindowsTable): WindowMetrics {
  const n = (v: number | string) => Number(v);
  const listening = r.listening === null ? [] : (JSON.parse(r.listening) as string[]);
  return {
    thing: r.thing,
    windowStart: r.window_start,
    windowEnd: r.window_end,
    cloud: {
      connectAttempts: n(r.connect_attempts),
      authnFailures: n(r.authn_failures),
      authzFailures: n(r.authz_failures),
      disconnects: n(r.disconnects),
      disconnectedSeconds: n(r.disconnected_seconds),
      messagesIn: n(r.messages_in),
      messagesOut: n(r.messages_out),
      bytesIn: n(r.bytes_in),
      bytesOut: n(r.bytes_out),
      messageSizeMax: n(r.message_size_max),
      messageSizeMean: Number(r.message_size_mean),
      sourceAddressCount: n(r.source_address_count),
      sourceAddresses: JSON.parse(r.source_addresses) as string[],
      certificateAddressesMax: n(r.certificate_addresses_max),
      certificateAddresses: [],
    },
    device:
      r.reported === 1
        ? {
            listening,
            listeningPorts: [...new Set(listening.map((s) => Number(s.slice(s.indexOf('/') + 1))))],
            listeningTotal: n(r.listening_total ?? 0),
            established: n(r.established ?? 0),
            destinations: r.destinations === null ? [] : (JSON.parse(r.destinations) as string[]),
            bytesIn: n(r.device_bytes_in ?? 0),
            bytesOut: n(r.device_bytes_out ?? 0),
            packetsIn: n(r.packets_in ?? 0),
            packetsOut: n(r.packets_out ?? 0),
            processes: n(r.processes ?? 0),
            memoryUsedBytes: n(r.memory_used_bytes ?? 0),
            cpuPercent: Number(r.cpu_percent ?? 0),
            diskUsedBytes: n(r.disk_used_bytes ?? 0),
            uptimeSeconds: n(r.uptime_seconds ?? 0),
            agentRestarts: n(r.agent_restarts ?? 0),
            authFailures: n(r.device_auth_failures ?? 0),
            batteryPercent: r.battery_percent === null ? null : Number(r.battery_percent),
          }
        : null,
    custom: JSON.parse(r.custom) as Record<string, CustomValue>,
  };
}
