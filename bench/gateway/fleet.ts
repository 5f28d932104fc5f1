import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../packages/server/src/config/load-config.js';
import { toPem } from '../../packages/server/src/identity/pki/certificate.js';
import { buildCertificateRequest } from '../../packages/server/src/identity/pki/csr.js';
import { thingName } from '../../packages/server/src/identity/registry/names.js';
import { closeContext, openHome } from '../../packages/server/src/node.js';
import { dropSchema, POSTGRES_URL } from '../lib/bench-home.js';

/** One device as manufacturing leaves it: its own key, and its certificate followed by the issuing CA. */
export interface BenchDevice {
  readonly name: string;
  readonly serial: string;
  readonly keyPem: string;
  readonly certPem: string;
}

/** A provisioned data folder, ready for a node (bench/gateway/gateway-node.ts) to serve. */
export interface Fleet {
  readonly home: string;
  /** FLEETWARD_* variables that open this data folder (the database too). */
  readonly env: Readonly<Record<string, string>>;
  /** Fleetward's CA chain (issuing, then root): what device certificates chain to. */
  readonly chainPem: string;
  /** JSON file of BenchDevice[], for the load generator. */
  readonly devicesFile: string;
  readonly devices: readonly BenchDevice[];
  /** The thing allowed to read every device's telemetry (`things/+/telemetry`). */
  readonly observer: BenchDevice;
  remove(): Promise<void>;
}

const bench = { name: 'bench' };
export const OBSERVER = 'observer';
/** What the observer may do on top of connecting as itself: read, never write, every device's telemetry. */
const OBSERVER_POLICY = {
  version: '2026-11',
  description: 'bench observer: reads the telemetry of every device',
  statements: [
    { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
    { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/things/+/telemetry'] },
  ],
};

/**
 * A fresh data folder (SQLite, or PostgreSQL in the schema given) with `count` active things, each
 * with its own P-256 key and a certificate issued from its CSR, and the observer thing with its
 * policy attached. Keys are made once per name prefix and kept in `keys` across fleets.
 */
export async function provisionFleet(count: number, options: { readonly postgresSchema?: string; readonly prefix?: string } = {}): Promise<Fleet> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-gateway-'));
  const env: Record<string, string> = { FLEETWARD_HOME: join(dir, 'home'), FLEETWARD_LOG_LEVEL: 'warn', FLEETWARD_API_PORT: '0', FLEETWARD_MQTT_PORT: '0' };
  if (options.postgresSchema !== undefined) Object.assign(env, { FLEETWARD_DATABASE_URL: POSTGRES_URL, FLEETWARD_DATABASE_SCHEMA: options.postgresSchema });
  const remove = async (): Promise<void> => {
    if (options.postgresSchema !== undefined) await dropSchema(options.postgresSchema);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const { context } = await openHome(loadConfig({ env, flags: {} }).config, { create: true });
    try {
      const prefix = options.prefix ?? 'dev';
      const names = [OBSERVER, ...Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`)];
      const keys = names.map(() => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
      await context.store.db.transaction().execute(async (trx) => {
        for (const name of names) await context.identity.things.createWithin(trx, { name: thingName(name), state: 'active' }, bench);
      });
      // All at once: the issuance group commit batches them.
      const issued = await Promise.all(
        names.map((name, i) => {
          const csr = toPem(buildCertificateRequest(name, keys[i] as ReturnType<typeof generateKeyPairSync>), 'CERTIFICATE REQUEST');
          return context.identity.certificates.issue({ subject: name, kind: 'device', csr, via: 'operator', keyStorage: 'software' }, bench);
        }),
      );
      const devices = issued.map((certificate, i): BenchDevice => ({
        name: names[i] as string,
        serial: certificate.serial,
        keyPem: (keys[i] as ReturnType<typeof generateKeyPairSync>).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        // The device certificate and the issuing CA (the first certificate of the chain), as a device presents them.
        certPem: certificate.certificatePem + (certificate.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? ''),
      }));
      await context.policies.create('bench-observer', OBSERVER_POLICY, bench);
      await context.policies.attach('bench-observer', { kind: 'thing', name: OBSERVER }, bench);
      const chainPem = (await context.identity.cas.hierarchy()).chainPem;
      const devicesFile = join(dir, 'devices.json');
      await writeFile(devicesFile, JSON.stringify(devices));
      const [observer, ...rest] = devices;
      return { home: env.FLEETWARD_HOME as string, env, chainPem, devicesFile, devices: rest, observer: observer as BenchDevice, remove };
    } finally {
      await closeContext(context);
    }
  } catch (error) {
    await remove().catch(() => undefined);
    throw error;
  }
}
