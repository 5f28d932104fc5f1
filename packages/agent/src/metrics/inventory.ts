import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { arch, release, type } from 'node:os';
import { FleetwardError, parseInventory, type InventoryReport } from '@fleetward/protocol';
import { parseOsRelease } from './os-release.js';

export interface InventoryOptions {
  readonly agentVersion: string;
  readonly firmwareVersion: string;
  /** The running firmware's anti-rollback counter (rule 4); left out by devices that do not update. */
  readonly securityVersion?: number;
  /** The running firmware image (a file or a block device), hashed for the report. */
  readonly imagePath?: string;
  /** The image's SBOM: a URI or a `sha256:` digest. */
  readonly sbomRef?: string;
  /** Where os-release(5) may be, first found wins. */
  readonly osReleasePaths?: readonly string[];
  readonly clock?: { now(): Date };
}

const OS_RELEASE_PATHS = ['/etc/os-release', '/usr/lib/os-release'];

/**
 * What the device runs, for `$fw/things/{thing}/inventory`. The report is checked with the server's
 * own parser before it is returned: a misconfigured version or SBOM reference is refused here,
 * naming the field, rather than published and dropped.
 */
export async function collectInventory(options: InventoryOptions): Promise<InventoryReport> {
  const report: InventoryReport = {
    v: 1,
    at: (options.clock?.now() ?? new Date()).toISOString(),
    agentVersion: options.agentVersion,
    firmwareVersion: options.firmwareVersion,
    ...(options.securityVersion !== undefined && { securityVersion: options.securityVersion }),
    imageHash: options.imagePath === undefined ? null : await sha256File(options.imagePath),
    os: { type: type(), release: release(), arch: arch(), name: (await readOsRelease(options.osReleasePaths ?? OS_RELEASE_PATHS)).PRETTY_NAME ?? null },
    sbomRef: options.sbomRef ?? null,
  };
  return parseInventory(new TextEncoder().encode(JSON.stringify(report)));
}

/** `sha256:<hex>` of a file, streamed: an image can be larger than the device's free memory. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (error) {
    throw new FleetwardError('FW_ERR_NOT_FOUND', `the firmware image ${path} cannot be read`, { path }, { cause: error });
  }
  return `sha256:${hash.digest('hex')}`;
}

async function readOsRelease(paths: readonly string[]): Promise<Record<string, string>> {
  for (const path of paths) {
    const text = await readFile(path, 'utf8').catch(() => null);
    if (text !== null) return parseOsRelease(text);
  }
  return {};
}
