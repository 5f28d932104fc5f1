import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig } from '../../packages/server/src/config/load-config.js';
import { toPem } from '../../packages/server/src/identity/pki/certificate.js';
import { buildCertificateRequest } from '../../packages/server/src/identity/pki/csr.js';
import { thingName } from '../../packages/server/src/identity/registry/names.js';
import { closeContext, openHome, type NodeContext } from '../../packages/server/src/node.js';
import { generateTufKey, privateKeySigner, type TufSigner } from '../../packages/server/src/updates/tuf/keys.js';
import { signMetadata } from '../../packages/server/src/updates/tuf/offline-signing.js';

/** One simulated device: its thing name, its own P-256 key and its certificate followed by the issuing CA. */
export interface UpdateDevice {
  readonly name: string;
  readonly keyPem: string;
  readonly certPem: string;
}

/** A provisioned data folder for the download and rollout parts of the updates scenario. */
export interface UpdateHome {
  readonly dir: string;
  /** FLEETWARD_* variables that open this data folder. */
  readonly env: Readonly<Record<string, string>>;
  /** Fleetward's CA chain (what the node's certificate and the devices' chain to). */
  readonly chainPem: string;
  /** `1.root.json` as devices are shipped with it. */
  readonly rootJson: string;
  /** JSON file of UpdateDevice[] for the device processes. */
  readonly devicesFile: string;
  readonly devices: readonly UpdateDevice[];
  /** An admin API token (deployments are created over the API, as an operator does). */
  readonly token: string;
  /** The large artifact the download part fetches, and its blob file (for the plain HTTPS baseline). */
  readonly big: { readonly target: string; readonly sha256: string; readonly size: number; readonly file: string };
  /** The small artifact the rollout deploys. */
  readonly rollout: { readonly target: string; readonly sha256: string; readonly size: number };
  remove(): Promise<void>;
}

export const THING_TYPE = 'bench-sensor';
const bench = { name: 'operator:bench' };

/** Offline keys as an operator keeps them (on another machine in real life; here in memory). */
export function offlineSigner(): TufSigner {
  return privateKeySigner(generateTufKey().privateKeyPem);
}

/** Sets up the TUF repository as documented: root proposed here, signed offline, imported. Returns the offline targets key. */
export async function setUpRepository(context: NodeContext): Promise<TufSigner> {
  const root = offlineSigner();
  const targets = offlineSigner();
  const proposal = await context.updates.repository.proposeRoot({ rootKeys: [root.publicKey], rootThreshold: 1, targetsKeys: [targets.publicKey], targetsThreshold: 1, expiresDays: 365 });
  await context.updates.repository.importRoot(await signMetadata(proposal, [root]), bench);
  return targets;
}

/** Random bytes in 1 MiB chunks (a stream, so a 256 MiB artifact is never one buffer). */
function randomStream(size: number): Readable {
  const chunk = 1024 * 1024;
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < size; sent += chunk) yield randomBytes(Math.min(chunk, size - sent));
    })(),
  );
}

/**
 * A fresh SQLite data folder with `count` active things of type bench-sensor (each with its own
 * P-256 key and a certificate issued from its CSR), the TUF repository set up, a large artifact of
 * `bigBytes` and a 1 MiB rollout artifact uploaded and signed into targets (offline key), and an
 * admin token.
 */
export async function provisionUpdateHome(count: number, bigBytes: number): Promise<UpdateHome> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-updates-'));
  const env: Record<string, string> = { FLEETWARD_HOME: join(dir, 'home'), FLEETWARD_LOG_LEVEL: 'warn', FLEETWARD_API_PORT: '0', FLEETWARD_MQTT_PORT: '0' };
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const { context } = await openHome(loadConfig({ env, flags: {} }).config, { create: true });
    try {
      await context.identity.thingTypes.create({ name: THING_TYPE }, bench);
      const names = Array.from({ length: count }, (_, i) => `sensor-${String(i).padStart(5, '0')}`);
      await context.store.db.transaction().execute(async (trx) => {
        for (const name of names) await context.identity.things.createWithin(trx, { name: thingName(name), type: THING_TYPE, state: 'active' }, bench);
      });
      const keys = names.map(() => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
      // All at once: the issuance group commit batches them.
      const issued = await Promise.all(
        names.map((name, i) => {
          const csr = toPem(buildCertificateRequest(name, keys[i] as ReturnType<typeof generateKeyPairSync>), 'CERTIFICATE REQUEST');
          return context.identity.certificates.issue({ subject: name, kind: 'device', csr, via: 'operator', keyStorage: 'software' }, bench);
        }),
      );
      const devices = issued.map((certificate, i): UpdateDevice => ({
        name: names[i] as string,
        keyPem: (keys[i] as ReturnType<typeof generateKeyPairSync>).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        certPem: certificate.certificatePem + (certificate.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? ''),
      }));

      const targetsKey = await setUpRepository(context);
      const big = await context.updates.artifacts.add(randomStream(bigBytes), { name: 'bench-image', version: '1.0.0', securityVersion: 1, hardware: [THING_TYPE] }, bench);
      const rollout = await context.updates.artifacts.add(randomStream(1024 * 1024), { name: 'bench-fw', version: '2.0.0', securityVersion: 2, hardware: [THING_TYPE] }, bench);
      const proposal = await context.updates.repository.proposeTargets(30);
      await context.updates.repository.importTargets(await signMetadata(proposal, [targetsKey]), bench);
      const rootJson = ((await context.updates.repository.metadataFile('1.root.json')) as Buffer).toString('utf8');

      const { token } = await context.operators.create({ name: 'bench', role: 'admin' }, bench);
      const chainPem = (await context.identity.cas.hierarchy()).chainPem;
      const devicesFile = join(dir, 'devices.json');
      await writeFile(devicesFile, JSON.stringify(devices));
      return {
        dir,
        env,
        chainPem,
        rootJson,
        devicesFile,
        devices,
        token: token.token,
        big: { target: big.target, sha256: big.sha256, size: big.size, file: context.updates.blobs.pathOf(big.sha256) },
        rollout: { target: rollout.target, sha256: rollout.sha256, size: rollout.size },
        remove,
      };
    } finally {
      await closeContext(context);
    }
  } catch (error) {
    await remove().catch(() => undefined);
    throw error;
  }
}
