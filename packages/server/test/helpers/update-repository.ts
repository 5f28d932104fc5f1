import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Updater, type Fetcher } from 'tuf-js';
// tuf-js stops looking for newer roots only on its own HTTP error with 403/404.
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import type { Actor } from '../../src/audit/audit-events.js';
import type { NodeContext } from '../../src/node.js';
import { generateTufKey, privateKeySigner, type TufPublicKey, type TufSigner } from '../../src/updates/tuf/keys.js';
import { signMetadata } from '../../src/updates/tuf/offline-signing.js';
import type { FirmwareArtifact } from '../../src/updates/types.js';
import { publishTargets as publish } from '../../src/updates/publish-targets.js';

const admin: Actor = { name: 'operator:admin' };

/** Offline keys as an operator keeps them: a signer and the public half. */
export interface OfflineKey {
  readonly signer: TufSigner;
  readonly publicKey: TufPublicKey;
}

export function offlineKey(): OfflineKey {
  const key = generateTufKey();
  return { signer: privateKeySigner(key.privateKeyPem), publicKey: key.publicKey };
}

export interface SignedRepository {
  readonly root: readonly OfflineKey[];
  readonly targets: readonly OfflineKey[];
  /** root.json as a device is shipped with it. */
  readonly rootJson: unknown;
}

/** Sets up the repository as the documented workflow does: propose, sign offline, import. */
export async function setUpRepository(context: NodeContext, options: { rootThreshold?: number; targetsThreshold?: number; targetsKeys?: number } = {}): Promise<SignedRepository> {
  const root = [offlineKey(), offlineKey()].slice(0, Math.max(1, options.rootThreshold ?? 1));
  const targets = Array.from({ length: options.targetsKeys ?? Math.max(1, options.targetsThreshold ?? 1) }, () => offlineKey());
  const proposal = await context.updates.repository.proposeRoot({
    rootKeys: root.map((k) => k.publicKey),
    rootThreshold: options.rootThreshold ?? 1,
    targetsKeys: targets.map((k) => k.publicKey),
    targetsThreshold: options.targetsThreshold ?? 1,
    expiresDays: 365,
  });
  const signed = await signMetadata(proposal, root.map((k) => k.signer));
  await context.updates.repository.importRoot(signed, admin);
  return { root, targets, rootJson: signed };
}

/** Uploads an artifact of random bytes (or the given ones). */
export async function addArtifact(context: NodeContext, request: { name?: string; version: string; securityVersion: number; hardware: readonly string[]; bytes?: Buffer; securityRelease?: boolean }): Promise<{ artifact: FirmwareArtifact; bytes: Buffer }> {
  const bytes = request.bytes ?? randomBytes(4096);
  const artifact = await context.updates.artifacts.add(Readable.from([bytes]), { name: request.name ?? 'sensor-fw', version: request.version, securityVersion: request.securityVersion, hardware: request.hardware, ...(request.securityRelease && { securityRelease: true }) }, admin);
  return { artifact, bytes };
}

/** Signs every uploaded artifact into the next targets metadata and publishes it. */
export async function publishTargets(context: NodeContext, keys: readonly OfflineKey[]): Promise<void> {
  const proposal = await context.updates.repository.proposeTargets(30);
  await publish(context.updates, await signMetadata(proposal, keys.map((k) => k.signer)), admin);
}

/** A tuf-js fetcher over mutual TLS with a device's certificate, counting the Range requests it makes. */
export function deviceFetcher(ca: string, device: { keyPem: string; certPem: string }): Fetcher {
  const get = (url: string, maxLength: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const req = request(url, { ca, key: device.keyPem, cert: device.certPem }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new DownloadHTTPError(`GET ${url}: ${res.statusCode}`, res.statusCode ?? 0));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxLength) req.destroy(new Error(`more than ${maxLength} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  return {
    downloadBytes: (url, maxLength) => get(url, maxLength),
    async downloadFile(url, maxLength, handler) {
      const file = join(tmpdir(), `fw-tuf-${randomBytes(6).toString('hex')}`);
      await writeFile(file, await get(url, maxLength));
      return handler(file);
    },
  };
}

/** A tuf-js client as a device runs it: trusting the shipped root, fetching with its certificate. */
export async function deviceUpdater(baseUrl: string, ca: string, device: { keyPem: string; certPem: string }, rootJson: unknown, dir?: string): Promise<{ updater: Updater; dir: string }> {
  const home = dir ?? join(tmpdir(), `fw-device-${randomBytes(6).toString('hex')}`);
  await mkdir(join(home, 'metadata'), { recursive: true });
  await mkdir(join(home, 'targets'), { recursive: true });
  if (dir === undefined) await writeFile(join(home, 'metadata', 'root.json'), JSON.stringify(rootJson));
  const updater = new Updater({ metadataDir: join(home, 'metadata'), targetDir: join(home, 'targets'), metadataBaseUrl: `${baseUrl}/updates/v1/metadata`, targetBaseUrl: `${baseUrl}/updates/v1/targets`, fetcher: deviceFetcher(ca, device) });
  return { updater, dir: home };
}
