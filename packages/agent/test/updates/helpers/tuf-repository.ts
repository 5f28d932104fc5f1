import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { Key, Metadata, MetaFile, Root, Signature, Snapshot, TargetFile, Targets, Timestamp } from '@tufjs/models';

/** An ed25519 signing key as TUF names it: keyval.public is the raw 32-byte public key in hex. */
export interface RoleKey {
  readonly key: Key;
  readonly privateKey: KeyObject;
}

export function newRoleKey(): RoleKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');
  const keyID = createHash('sha256').update(JSON.stringify({ keytype: 'ed25519', scheme: 'ed25519', keyval: { public: raw } })).digest('hex');
  return { key: new Key({ keyID, keyType: 'ed25519', scheme: 'ed25519', keyVal: { public: raw } }), privateKey };
}

function signWith(metadata: Metadata<Root | Targets | Snapshot | Timestamp>, key: RoleKey): void {
  metadata.sign((data) => new Signature({ keyID: key.key.keyID, sig: sign(null, data, key.privateKey).toString('hex') }), true);
}

export interface Release {
  readonly version: string;
  readonly securityVersion: number;
  readonly hardware: readonly string[];
  readonly securityRelease?: boolean;
}

export interface PublishOptions {
  /** Sign the targets metadata with this key instead of the root's targets key (an attacker's key). */
  readonly targetsKey?: RoleKey;
  /** When the timestamp expires (default: in a day). */
  readonly timestampExpires?: Date;
  /** Lie about a target's length in the signed metadata. */
  readonly lengthOverride?: Readonly<Record<string, number>>;
}

const DAY = 86_400_000;

/**
 * A real TUF repository built in the test (consistent snapshots, one ed25519 key per role), the
 * way the server's repository lays it out: `N.root.json`, `timestamp.json`, `N.snapshot.json`,
 * `N.targets.json`, and targets named `<sha256>.<target>`.
 */
export class TestRepository {
  readonly keys = { root: newRoleKey(), targets: newRoleKey(), snapshot: newRoleKey(), timestamp: newRoleKey() };
  /** Metadata files by name, as served. */
  readonly metadata = new Map<string, Buffer>();
  /** Target files by their served name `<sha256>.<target>`. */
  readonly files = new Map<string, Buffer>();
  readonly #targets = new Map<string, { bytes: Buffer; release: Release }>();
  #version = 0;

  constructor() {
    const expires = new Date(Date.now() + 365 * DAY).toISOString();
    const root = new Root({ version: 1, specVersion: '1.0.31', expires, consistentSnapshot: true });
    for (const role of ['root', 'targets', 'snapshot', 'timestamp'] as const) root.addKey(this.keys[role].key, role);
    const metadata = new Metadata(root);
    signWith(metadata, this.keys.root);
    this.metadata.set('1.root.json', Buffer.from(JSON.stringify(metadata.toJSON())));
  }

  /** The root a device ships with. */
  get rootJson(): Buffer {
    return this.metadata.get('1.root.json') as Buffer;
  }

  addTarget(target: string, bytes: Buffer, release: Release): string {
    this.#targets.set(target, { bytes, release });
    const sha = createHash('sha256').update(bytes).digest('hex');
    this.files.set(`${sha}.${target}`, bytes);
    return sha;
  }

  /** Signs and publishes a new version of targets, snapshot and timestamp. */
  publish(options: PublishOptions = {}): void {
    const version = ++this.#version;
    const expires = new Date(Date.now() + 7 * DAY).toISOString();
    const targets = new Targets({ version, specVersion: '1.0.31', expires });
    for (const [path, { bytes, release }] of this.#targets) {
      const custom = { version: release.version, securityVersion: release.securityVersion, hardware: [...release.hardware], securityRelease: release.securityRelease ?? false };
      targets.addTarget(new TargetFile({ path, length: options.lengthOverride?.[path] ?? bytes.length, hashes: { sha256: createHash('sha256').update(bytes).digest('hex') }, unrecognizedFields: { custom } }));
    }
    const targetsMd = new Metadata(targets);
    signWith(targetsMd, options.targetsKey ?? this.keys.targets);
    const snapshot = new Metadata(new Snapshot({ version, specVersion: '1.0.31', expires, meta: { 'targets.json': new MetaFile({ version }) } }));
    signWith(snapshot, this.keys.snapshot);
    const timestamp = new Metadata(new Timestamp({ version, specVersion: '1.0.31', expires: (options.timestampExpires ?? new Date(Date.now() + DAY)).toISOString(), snapshotMeta: new MetaFile({ version }) }));
    signWith(timestamp, this.keys.timestamp);
    this.metadata.set(`${version}.targets.json`, Buffer.from(JSON.stringify(targetsMd.toJSON())));
    this.metadata.set(`${version}.snapshot.json`, Buffer.from(JSON.stringify(snapshot.toJSON())));
    this.metadata.set('timestamp.json', Buffer.from(JSON.stringify(timestamp.toJSON())));
  }
}
