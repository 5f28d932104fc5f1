import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DEFAULT_JSON_LIMITS } from '../../packages/server/src/data/bounded-json.js';
import { CompiledContract } from '../../packages/server/src/data/compiled-contract.js';
import { parseContract } from '../../packages/server/src/data/contract.js';
import { openDataServices } from '../../packages/server/src/data/data-services.js';
import { ContractCatalog, evaluatePublish, type PublishInput } from '../../packages/server/src/data/evaluate-publish.js';
import { FieldCrypto } from '../../packages/server/src/data/field-crypto.js';
import type { TelemetryRecord, TelemetryWriter } from '../../packages/server/src/data/telemetry-writer.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../packages/server/src/audit/audit-log.js';
import { systemClock } from '../../packages/server/src/clock.js';
import { KeyRing } from '../../packages/server/src/identity/key-ring.js';
import { migrateToLatest, openStore, type Store } from '../../packages/server/src/store/store.js';
import { measureContractThroughput } from '../data/gateway-contract-throughput.js';
import { progress, row, stats, type Scenario } from '../lib/report.js';

/** `BENCH_QUICK=1 npm run bench -- data`: fewer messages and shorter gateway windows (same shape, same targets). */
const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = 5;
const STORAGE_RUNS = 3;
const MESSAGES = QUICK ? 50_000 : 200_000;
const STORE_ROWS = QUICK ? 60_000 : 200_000;
const STORE_BATCH = 2_000;
/** A steady stream into the telemetry writer, as the gateway feeds it (each enqueue a millisecond apart). */
const STEADY_RATE = 25_000;
const STEADY_SECONDS = QUICK ? 1 : 2;
const VALIDATE_TARGET = 50_000;
const STORE_TARGET = 20_000;
/** Gateway throughput with contracts on over off, run by run (the data-minimization issue). */
const GATEWAY_RATIO_TARGET = 0.8;
const GATEWAY_RUNS = 3;
const GATEWAY_QOS = 1;
/** As the gateway scenario's message runs: 50 devices → 1 observer, at most 20 undelivered messages each. */
const GATEWAY_PUBLISHERS = 50;
const GATEWAY_WINDOW = 20;
const GATEWAY_SECONDS = QUICK ? 2 : 5;

/** A 10-field environment sensor contract using every transform but drop on the hot path. */
export function benchContract(recipientKey: string): unknown {
  return {
    name: 'bench-env',
    version: 1,
    topic: 'things/${thing.name}/telemetry/env',
    retention: 'P30D',
    schema: {
      type: 'object',
      required: ['temp', 'humidity', 'at'],
      properties: {
        temp: { type: 'number', minimum: -40, maximum: 85 },
        humidity: { type: 'number', minimum: 0, maximum: 100 },
        pressure: { type: 'number', minimum: 300, maximum: 1100 },
        battery: { type: 'integer', minimum: 0, maximum: 100 },
        mac: { type: 'string', maxLength: 17 },
        owner: { type: 'string', maxLength: 64 },
        location: { type: 'object', required: ['lat', 'lon'], properties: { lat: { type: 'number', minimum: -90, maximum: 90 }, lon: { type: 'number', minimum: -180, maximum: 180 } } },
        at: { type: 'string', format: 'date-time' },
        firmware: { type: 'string', maxLength: 64 },
        serial: { type: 'string', maxLength: 32 },
      },
    },
    fields: {
      temp: { class: 'internal', purposes: ['monitoring'] },
      humidity: { class: 'internal', purposes: ['monitoring'], transform: { kind: 'round', decimals: 0 } },
      pressure: { class: 'internal', purposes: ['monitoring'], transform: { kind: 'bucket', size: 5 } },
      battery: { class: 'internal', purposes: ['maintenance'] },
      mac: { class: 'personal', purposes: ['maintenance'], transform: 'pseudonymize' },
      owner: { class: 'sensitive', purposes: ['billing'], retention: 'P365D', transform: 'tokenize' },
      location: { class: 'personal', purposes: ['maintenance'], retention: 'P7D', transform: { kind: 'round', decimals: 2 } },
      at: { class: 'internal', purposes: ['monitoring'], transform: { kind: 'time-bucket', unit: 'minute' } },
      firmware: { class: 'public', purposes: ['maintenance'], transform: { kind: 'truncate', length: 8 } },
      serial: { class: 'secret', purposes: ['warranty'], transform: { kind: 'encrypt', recipientKey } },
    },
  };
}

export function benchPayloads(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    Buffer.from(
      JSON.stringify({
        temp: 20 + (i % 100) / 10,
        humidity: 40 + (i % 37) * 0.7,
        pressure: 1013.25 - (i % 20),
        battery: 100 - (i % 100),
        mac: `AA:BB:CC:00:${(i % 256).toString(16).padStart(2, '0')}:01`,
        owner: `customer-${i % 500}@example.com`,
        location: { lat: 48.858_37 + (i % 1000) / 1e5, lon: 2.294_48 - (i % 1000) / 1e5 },
        at: new Date(Date.UTC(2026, 10, 25, 12, 0, i % 3600)).toISOString(),
        firmware: `v2.${i % 10}.${i % 7}-build.${i}`,
        serial: `SN-${String(i).padStart(10, '0')}`,
      }),
    ),
  );
}

/**
 * The same 10 fields on the topic the gateway bench devices publish to, with generalizing
 * transforms only (round, bucket, time-bucket) and one retention: a row stored per message.
 */
export function gatewayContract(): unknown {
  const { schema } = benchContract('') as { readonly schema: unknown };
  const monitoring = { class: 'internal', purposes: ['monitoring'] };
  const maintenance = { class: 'internal', purposes: ['maintenance'] };
  return {
    name: 'bench-gateway',
    version: 1,
    topic: 'things/${thing.name}/telemetry',
    retention: 'P30D',
    schema,
    fields: {
      temp: monitoring,
      humidity: { ...monitoring, transform: { kind: 'round', decimals: 0 } },
      pressure: { ...monitoring, transform: { kind: 'bucket', size: 5 } },
      battery: maintenance,
      mac: { class: 'personal', purposes: ['maintenance'] },
      owner: { class: 'personal', purposes: ['billing'] },
      location: { class: 'personal', purposes: ['maintenance'], transform: { kind: 'round', decimals: 2 } },
      at: { ...monitoring, transform: { kind: 'time-bucket', unit: 'minute' } },
      firmware: { class: 'public', purposes: ['maintenance'] },
      serial: maintenance,
    },
  };
}

/** 1,000 devices: their names and topics come with each PUBLISH (the gateway has them as strings). */
const THINGS = Array.from({ length: 1000 }, (_, i) => `sensor-${i}`);
const TOPICS = THINGS.map((thing) => `things/${thing}/telemetry/env`);

/**
 * CPU (every thread of this process: the event loop, the SQLite writer thread) per message for a
 * steady stream of records enqueued as the gateway does, a few each millisecond, until stored.
 */
async function steadyStorageCpu(writer: TelemetryWriter, records: readonly TelemetryRecord[]): Promise<number> {
  const total = STEADY_RATE * STEADY_SECONDS;
  const before = process.cpuUsage();
  const started = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * STEADY_RATE));
    for (; sent < due; sent++) if (!writer.enqueue(records[sent % records.length] as TelemetryRecord)) throw new Error('the telemetry backlog is full');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await writer.flush();
  const cpu = process.cpuUsage(before);
  return (cpu.user + cpu.system) / total;
}

function validationRun(catalog: ContractCatalog, inputs: readonly Buffer[]): number {
  const at = Date.now();
  let accepted = 0;
  const started = performance.now();
  for (let i = 0; i < MESSAGES; i++) {
    const input: PublishInput = { thing: THINGS[i % 1000] as string, thingType: null, topic: TOPICS[i % 1000] as string, payload: inputs[i % inputs.length] as Buffer, receivedAtMs: at };
    const result = evaluatePublish(catalog, input, { unmatched: 'refuse', limits: DEFAULT_JSON_LIMITS });
    if (result.verdict === 'accept' && Buffer.from(JSON.stringify(result.payload)).length > 0) accepted++;
  }
  const seconds = (performance.now() - started) / 1000;
  if (accepted !== MESSAGES) throw new Error(`only ${accepted} of ${MESSAGES} messages were accepted`);
  return MESSAGES / seconds;
}

/** Median µs per call of `work(i)` over RUNS timed passes of `count` calls, after one untimed pass (JIT). */
function microsPerCall(count: number, work: (i: number) => void): number {
  const pass = (): number => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) work(i);
    return Number(process.hrtime.bigint() - started) / 1000 / count;
  };
  pass();
  return stats(Array.from({ length: RUNS }, pass)).median;
}

/**
 * What the gateway's contract path cannot avoid, on one core: parsing each payload (to validate it)
 * and encoding the minimized one (for subscribers and storage); then the whole evaluation with the
 * gateway contract (parse, validate, minimize, encode).
 */
function contractPathFloor(): { readonly parse: number; readonly encode: number; readonly evaluate: number } {
  const payloads = benchPayloads(1_000);
  const parsed = payloads.map((p) => JSON.parse(p.toString()) as unknown);
  const catalog = new ContractCatalog([new CompiledContract(parseContract(gatewayContract()), new FieldCrypto({ pseudonym: randomBytes(32), vault: randomBytes(32) }))]);
  const inputs = payloads.map((payload, i): PublishInput => ({ thing: `sensor-${i}`, thingType: null, topic: `things/sensor-${i}/telemetry`, payload, receivedAtMs: Date.now() }));
  let sink = 0;
  const parse = microsPerCall(200_000, (i) => void (sink += JSON.parse((payloads[i % 1_000] as Buffer).toString()) === null ? 0 : 1));
  const encode = microsPerCall(200_000, (i) => void (sink += Buffer.from(JSON.stringify(parsed[i % 1_000])).length));
  const evaluate = microsPerCall(100_000, (i) => {
    const result = evaluatePublish(catalog, inputs[i % 1_000] as PublishInput, { unmatched: 'refuse', limits: DEFAULT_JSON_LIMITS });
    if (result.verdict !== 'accept') throw new Error(`the gateway contract refused its bench payload: ${JSON.stringify(result)}`);
    sink += result.payloadJson.length;
  });
  if (sink === 0) throw new Error('nothing was measured');
  return { parse, encode, evaluate };
}

export const data: Scenario = {
  name: 'data',
  description: `rule 9: contract validation + transforms on one core (10-field payload, every transform), SQLite telemetry storage rows/s, gateway throughput with a contract vs none${QUICK ? ' (quick)' : ''}`,
  async run() {
    const recipient = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'pem', type: 'spki' }) as string;
    const crypto = new FieldCrypto({ pseudonym: randomBytes(32), vault: randomBytes(32) });
    const catalog = new ContractCatalog([new CompiledContract(parseContract(benchContract(recipient)), crypto)]);
    const inputs = benchPayloads(2_000);
    validationRun(catalog, inputs); // warm-up (JIT)
    const validation: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      validation.push(validationRun(catalog, inputs));
      progress(`validation + transforms run ${i}/${RUNS}: ${Math.round(validation.at(-1) ?? 0)} msgs/s`);
    }

    const storage: number[] = [];
    const ingestRates: number[] = [];
    const steadyCpu: number[] = [];
    for (let run = 1; run <= STORAGE_RUNS; run++) {
      const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-data-'));
      // The store as a node opens it (WAL, synchronous=FULL), without the rest of a node.
      const store: Store = await openStore({ kind: 'sqlite', file: join(dir, 'fleetward.db') });
      try {
        await migrateToLatest(store, 'public');
        const clock = systemClock;
        const audit = new AuditLog(store, clock);
        const keyRing = KeyRing.generate(clock.now());
        const services = await openDataServices({ store, audit, clock, keyRing });
        await services.contracts.apply([benchContract(recipient)], { name: 'bench' });
        // Storage alone: records as the ingest makes them (3 rows each: the contract's three retentions).
        const minimized = catalog.contracts[0] as CompiledContract;
        const records: TelemetryRecord[] = [];
        for (let i = 0; records.length * 3 < STORE_ROWS; i++) {
          const result = minimized.minimize(JSON.parse((inputs[i % inputs.length] as Buffer).toString()) as never, `sensor-${i % 1000}`);
          if ('reason' in result) throw new Error(result.detail);
          records.push({ messageId: randomUUID(), thing: `sensor-${i % 1000}`, thingType: null, topic: `things/sensor-${i % 1000}/telemetry/env`, contract: 'bench-env', version: 1, receivedAt: new Date().toISOString(), groups: result.groups, vault: [] });
        }
        const rows = records.reduce((n, r) => n + r.groups.length, 0);
        let started = performance.now();
        for (let i = 0; i < records.length; i += STORE_BATCH) await services.writer.write(records.slice(i, i + STORE_BATCH));
        storage.push(rows / ((performance.now() - started) / 1000));
        progress(`SQLite storage run ${run}/${STORAGE_RUNS}: ${Math.round(storage.at(-1) ?? 0)} rows/s (${rows} rows, ${STORE_BATCH} messages per transaction)`);

        // The whole ingest path: inspect (validate, minimize, seal tokens) and batched storage until flushed.
        const count = 50_000;
        started = performance.now();
        for (let i = 0; i < count; i++) {
          services.ingest.inspect({ thing: THINGS[i % 1000] as string, thingType: null, topic: TOPICS[i % 1000] as string, payload: inputs[i % inputs.length] as Buffer, receivedAtMs: Date.now() });
          if (i % 5_000 === 4_999) await new Promise((resolve) => setImmediate(resolve));
        }
        await services.flush();
        ingestRates.push(count / ((performance.now() - started) / 1000));
        progress(`SQLite ingest + storage run ${run}/${STORAGE_RUNS}: ${Math.round(ingestRates.at(-1) ?? 0)} msgs/s`);

        steadyCpu.push(await steadyStorageCpu(services.writer, records));
        progress(`SQLite storage of a steady ${STEADY_RATE} msgs/s run ${run}/${STORAGE_RUNS}: ${(steadyCpu.at(-1) ?? 0).toFixed(1)} µs CPU/msg`);
        await audit.flush();
      } finally {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      }
    }

    const floor = contractPathFloor();
    progress(`contract path floor: JSON.parse ${floor.parse.toFixed(2)} µs, encode ${floor.encode.toFixed(2)} µs, evaluation ${floor.evaluate.toFixed(2)} µs a message`);
    const gateway = await measureContractThroughput({
      contract: gatewayContract(),
      body: (benchPayloads(1)[0] as Buffer).toString(),
      runs: GATEWAY_RUNS,
      publishers: GATEWAY_PUBLISHERS,
      window: GATEWAY_WINDOW,
      qos: GATEWAY_QOS,
      warmupSeconds: 1,
      seconds: GATEWAY_SECONDS,
    });
    const on = gateway.on.map((f) => f.messagesPerSecond);
    const off = gateway.off.map((f) => f.messagesPerSecond);
    const gatewayLabel = `gateway, ${GATEWAY_PUBLISHERS} devices → 1 observer, QoS ${GATEWAY_QOS}`;
    return {
      rows: [
        row('validation + transforms, 10 fields, one core', 'events/s', validation, { atLeast: VALIDATE_TARGET }),
        row(`SQLite telemetry storage (${STORE_BATCH} messages per transaction)`, 'events/s', storage, { atLeast: STORE_TARGET }, 'rows/s'),
        row('SQLite ingest end to end (inspect + token vault + storage, flushed)', 'events/s', ingestRates, null, 'messages/s, 3 rows each'),
        row(`SQLite storage of a steady ${STEADY_RATE.toLocaleString('en-US')} messages/s: CPU per message (all threads)`, 'µs', steadyCpu, null, '3 rows each, batches paced'),
        row(`${gatewayLabel}, contract on: delivered messages/s`, 'events/s', on, null, 'validated, minimized, stored'),
        row(`${gatewayLabel}, no contract: delivered messages/s`, 'events/s', off, null, 'pass-unclassified'),
        row(`${gatewayLabel}: throughput contract on / off`, '×', on.map((value, i) => value / (off[i] as number)), { atLeast: GATEWAY_RATIO_TARGET }, 'run by run'),
        row(`${gatewayLabel}, contract on: broker CPU per delivered message`, 'µs', gateway.on.map((f) => f.perMessageBrokerUs)),
        row(`${gatewayLabel}, no contract: broker CPU per delivered message`, 'µs', gateway.off.map((f) => f.perMessageBrokerUs)),
        row(`${gatewayLabel}: what ${GATEWAY_RATIO_TARGET}× leaves the contract path per message (CPU-bound: (1/${GATEWAY_RATIO_TARGET} − 1) × no-contract CPU)`, 'µs', gateway.off.map((f) => (1 / GATEWAY_RATIO_TARGET - 1) * f.perMessageBrokerUs)),
        row('contract path floor, one core: JSON.parse of the 10-field payload', 'µs', [floor.parse], null, 'median of runs'),
        row('contract path floor, one core: JSON.stringify + Buffer of it', 'µs', [floor.encode], null, 'median of runs'),
        row('contract path, one core: evaluatePublish with the gateway contract (parse, validate, minimize, encode)', 'µs', [floor.evaluate], null, 'median of runs'),
      ],
      raw: { quick: QUICK, messages: MESSAGES, validation, storage, ingestRates, steadyCpu, floor, gateway },
      summary: `Gateway rows: two nodes provisioned alike in their own processes, both started, measured in turn (order alternating), ${GATEWAY_SECONDS} s windows; the contract-on node stores every message in SQLite and keeps the default \`refuse\` for unmatched topics, the other has no contract and \`FLEETWARD_DATA_UNMATCHED_TOPICS=pass-unclassified\`.`,
    };
  },
};
