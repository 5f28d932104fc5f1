import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';

/** How the device gets its own certificate when it has none yet. */
export type ProvisioningConfig =
  | {
      /** A claim certificate shared by a batch of devices, traded over MQTT for the device's own certificate. */
      readonly method: 'claim-certificate';
      readonly template: string;
      readonly claimCertFile: string;
      readonly claimKeyFile: string;
      readonly parameters: Readonly<Record<string, string>>;
    }
  | {
      /** A one-time enrollment token, traded over HTTPS (EST, RFC 7030) for the device's certificate. */
      readonly method: 'enrollment-token';
      readonly template: string;
      readonly estUrl: string;
      readonly tokenFile: string;
      readonly parameters: Readonly<Record<string, string>>;
    };

/** Where the device key lives: a 0600 file in the agent's folder, or a PKCS#11 token (an HSM, a secure element, SoftHSM2 in tests). */
export type KeyStorageConfig =
  | { readonly kind: 'software' }
  | {
      readonly kind: 'pkcs11';
      /** The token's PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
      readonly module: string;
      readonly token: string;
      /** A 0600 file holding the user PIN. */
      readonly pinFile: string;
      /** OpenSSL's PKCS#11 engine (Debian: libengine-pkcs11-openssl), through which TLS signs with the token's key. */
      readonly engine: string;
    };

export interface AgentConfig {
  /** The thing this device is: its certificate's CN and its MQTT client id. */
  readonly thing: string;
  /** `mqtts://host:port` or `wss://...`: there is no plaintext transport to choose. */
  readonly mqttUrl: string;
  /** The platform's CA chain: the only anchors the gateway's certificate may chain to. */
  readonly caFile: string;
  /** The agent's own folder (0700): key, certificate, queue, counters. */
  readonly stateDir: string;
  readonly provisioning: ProvisioningConfig | null;
  readonly keyStorage: KeyStorageConfig;
  /** Renew once less than this share of the certificate's lifetime is left. */
  readonly renewAtRemaining: number;
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number };
  /** `fsync`: a queued message survives a power cut; `write`: a crash or kill -9 of the agent only (fewer flash writes). */
  readonly queue: { readonly maxEntries: number; readonly maxBytes: number; readonly durability: 'fsync' | 'write' };
  readonly metricsIntervalSeconds: number;
  /** Where the kernel lists power supplies (`/sys/class/power_supply`): a battery's `capacity` is its level in percent. */
  readonly batterySupplyDir: string;
  readonly lowBatteryPercent: number;
  /** The firmware the device was built with (the factory slot); once updates run, the A/B slots' state says what runs. */
  readonly firmware: { readonly version: string; readonly securityVersion: number; readonly imagePath: string | null; readonly sbomRef: string | null };
  /** The OTA update client (rule 4); off without a trusted root. */
  readonly updates: UpdatesConfig;
  /** JSON Schemas of the application's telemetry streams, by stream name: readings that violate one are refused locally. */
  readonly telemetrySchemas: Readonly<Record<string, object>>;
}

/** A daily window, in UTC, `HH:MM`; `end` before `start` wraps past midnight. */
export interface MaintenanceWindow {
  readonly start: string;
  readonly end: string;
}

export interface UpdatesConfig {
  /** The initial trusted TUF root (`root.json` shipped with the image); null: updates are off. */
  readonly trustedRoot: string | null;
  /** The device's hardware (thing type): a target's signed `hardware` list must name it. */
  readonly hardware: string | null;
  /** Updates start only inside this window; null: at any time. */
  readonly maintenanceWindow: MaintenanceWindow | null;
  /** Below this battery level (percent) updates wait; a device on mains power never waits. */
  readonly minBatteryPercent: number;
  /** A new slot must reach the gateway over mTLS (and pass the health check) this soon after its boot, or it is rolled back. */
  readonly healthTimeoutSeconds: number;
  /** Boots of a new slot that never confirm before it is rolled back. */
  readonly maxBootAttempts: number;
  /** Largest artifact the device accepts, whatever the signed length says. */
  readonly maxArtifactBytes: number;
  /** Download attempts per job (each resumes where the last stopped). */
  readonly downloadAttempts: number;
  /** How often waiting jobs and the new slot's health deadline are looked at. */
  readonly checkIntervalSeconds: number;
}

const NAME = /^[A-Za-z0-9:_-]{1,128}$/;
const ALLOWED = new Set(['thing', 'mqttUrl', 'caFile', 'stateDir', 'provisioning', 'keyStorage', 'renewAtRemaining', 'reconnect', 'queue', 'metricsIntervalSeconds', 'batterySupplyDir', 'lowBatteryPercent', 'firmware', 'updates', 'telemetrySchemas']);
const UPDATES_ALLOWED = new Set(['trustedRoot', 'hardware', 'maintenanceWindow', 'minBatteryPercent', 'healthTimeoutSeconds', 'maxBootAttempts', 'maxArtifactBytes', 'downloadAttempts', 'checkIntervalSeconds']);
const CLOCK_TIME = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;

/** Reads and checks `agent.json`; relative paths are relative to the file. Any mistake is FW_ERR_CONFIG_INVALID naming the key. */
export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FleetwardError('FW_ERR_CONFIG_INVALID', `the agent configuration ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { file });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FleetwardError('FW_ERR_CONFIG_INVALID', `the agent configuration ${file} is not valid JSON`, { file });
  }
  return parseAgentConfig(value, dirname(resolve(file)));
}

export function parseAgentConfig(value: unknown, baseDir: string): AgentConfig {
  const root = objectAt(value, '');
  const unknown = Object.keys(root).find((k) => !ALLOWED.has(k));
  if (unknown !== undefined) throw bad(unknown, 'is not a known setting');
  const path = (v: unknown, key: string): string => {
    const p = str(v, key);
    return isAbsolute(p) ? p : resolve(baseDir, p);
  };
  const mqttUrl = str(root.mqttUrl, 'mqttUrl');
  if (!/^(mqtts|wss):\/\/[^/]+/.test(mqttUrl)) throw bad('mqttUrl', 'must be an mqtts:// or wss:// URL: the agent never talks to the gateway in plaintext');
  const reconnect = root.reconnect === undefined ? {} : objectAt(root.reconnect, 'reconnect');
  const queue = root.queue === undefined ? {} : objectAt(root.queue, 'queue');
  const firmware = root.firmware === undefined ? {} : objectAt(root.firmware, 'firmware');
  const schemas = root.telemetrySchemas === undefined ? {} : objectAt(root.telemetrySchemas, 'telemetrySchemas');
  for (const [stream, schema] of Object.entries(schemas)) {
    if (!NAME.test(stream)) throw bad(`telemetrySchemas.${stream}`, 'must be named with letters, digits, -, _ or :');
    objectAt(schema, `telemetrySchemas.${stream}`);
  }
  const initialMs = int(reconnect.initialMs ?? 1_000, 'reconnect.initialMs', 10, 3_600_000);
  return {
    thing: name(root.thing, 'thing'),
    mqttUrl,
    caFile: path(root.caFile, 'caFile'),
    stateDir: path(root.stateDir, 'stateDir'),
    provisioning: root.provisioning === undefined ? null : provisioning(root.provisioning, path),
    keyStorage: root.keyStorage === undefined ? { kind: 'software' } : keyStorage(root.keyStorage, path),
    renewAtRemaining: num(root.renewAtRemaining ?? 1 / 3, 'renewAtRemaining', 0.01, 0.9),
    reconnect: { initialMs, maxMs: int(reconnect.maxMs ?? 300_000, 'reconnect.maxMs', initialMs, 86_400_000) },
    queue: { maxEntries: int(queue.maxEntries ?? 10_000, 'queue.maxEntries', 1, 10_000_000), maxBytes: int(queue.maxBytes ?? 16 * 1024 * 1024, 'queue.maxBytes', 1024, 256 * 1024 * 1024), durability: durability(queue.durability) },
    metricsIntervalSeconds: int(root.metricsIntervalSeconds ?? 60, 'metricsIntervalSeconds', 1, 86_400),
    batterySupplyDir: root.batterySupplyDir === undefined ? '/sys/class/power_supply' : path(root.batterySupplyDir, 'batterySupplyDir'),
    lowBatteryPercent: int(root.lowBatteryPercent ?? 15, 'lowBatteryPercent', 0, 100),
    firmware: {
      version: firmware.version === undefined ? '0.0.0' : str(firmware.version, 'firmware.version'),
      securityVersion: int(firmware.securityVersion ?? 0, 'firmware.securityVersion', 0, 2_147_483_647),
      imagePath: firmware.imagePath === undefined ? null : path(firmware.imagePath, 'firmware.imagePath'),
      sbomRef: firmware.sbomRef === undefined ? null : str(firmware.sbomRef, 'firmware.sbomRef'),
    },
    updates: updates(root.updates, path),
    telemetrySchemas: schemas as Record<string, object>,
  };
}

function updates(value: unknown, path: (v: unknown, key: string) => string): UpdatesConfig {
  const u = value === undefined ? {} : objectAt(value, 'updates');
  const unknown = Object.keys(u).find((k) => !UPDATES_ALLOWED.has(k));
  if (unknown !== undefined) throw bad(`updates.${unknown}`, 'is not a known setting');
  const trustedRoot = u.trustedRoot === undefined ? null : path(u.trustedRoot, 'updates.trustedRoot');
  const hardware = u.hardware === undefined ? null : name(u.hardware, 'updates.hardware');
  // Without its hardware type the device could not refuse an artifact built for another one.
  if (trustedRoot !== null && hardware === null) throw bad('updates.hardware', 'is required with updates.trustedRoot (the thing type targets must be built for)');
  let maintenanceWindow: MaintenanceWindow | null = null;
  if (u.maintenanceWindow !== undefined) {
    const w = objectAt(u.maintenanceWindow, 'updates.maintenanceWindow');
    for (const key of ['start', 'end'] as const) if (typeof w[key] !== 'string' || !CLOCK_TIME.test(w[key])) throw bad(`updates.maintenanceWindow.${key}`, 'must be a UTC time HH:MM');
    if (w.start === w.end) throw bad('updates.maintenanceWindow.end', 'must differ from start');
    maintenanceWindow = { start: w.start as string, end: w.end as string };
  }
  return {
    trustedRoot,
    hardware,
    maintenanceWindow,
    minBatteryPercent: int(u.minBatteryPercent ?? 30, 'updates.minBatteryPercent', 0, 100),
    healthTimeoutSeconds: int(u.healthTimeoutSeconds ?? 300, 'updates.healthTimeoutSeconds', 1, 86_400),
    maxBootAttempts: int(u.maxBootAttempts ?? 3, 'updates.maxBootAttempts', 1, 100),
    maxArtifactBytes: int(u.maxArtifactBytes ?? 1024 ** 3, 'updates.maxArtifactBytes', 1, 64 * 1024 ** 3),
    downloadAttempts: int(u.downloadAttempts ?? 5, 'updates.downloadAttempts', 1, 100),
    checkIntervalSeconds: int(u.checkIntervalSeconds ?? 60, 'updates.checkIntervalSeconds', 1, 86_400),
  };
}

function provisioning(value: unknown, path: (v: unknown, key: string) => string): ProvisioningConfig {
  const p = objectAt(value, 'provisioning');
  const parameters = p.parameters === undefined ? {} : objectAt(p.parameters, 'provisioning.parameters');
  for (const [k, v] of Object.entries(parameters)) if (typeof v !== 'string') throw bad(`provisioning.parameters.${k}`, 'must be a string');
  const template = name(p.template, 'provisioning.template');
  const params = parameters as Record<string, string>;
  if (p.method === 'claim-certificate') return { method: 'claim-certificate', template, claimCertFile: path(p.claimCertFile, 'provisioning.claimCertFile'), claimKeyFile: path(p.claimKeyFile, 'provisioning.claimKeyFile'), parameters: params };
  if (p.method === 'enrollment-token') {
    const estUrl = str(p.estUrl, 'provisioning.estUrl');
    if (!estUrl.startsWith('https://')) throw bad('provisioning.estUrl', 'must be an https:// URL');
    return { method: 'enrollment-token', template, estUrl, tokenFile: path(p.tokenFile, 'provisioning.tokenFile'), parameters: params };
  }
  throw bad('provisioning.method', 'must be "claim-certificate" or "enrollment-token"');
}

function keyStorage(value: unknown, path: (v: unknown, key: string) => string): KeyStorageConfig {
  const k = objectAt(value, 'keyStorage');
  if (k.kind === 'software') return { kind: 'software' };
  if (k.kind !== 'pkcs11') throw bad('keyStorage.kind', 'must be "software" or "pkcs11"');
  return {
    kind: 'pkcs11',
    module: path(k.module, 'keyStorage.module'),
    token: str(k.token, 'keyStorage.token'),
    pinFile: path(k.pinFile, 'keyStorage.pinFile'),
    engine: k.engine === undefined ? defaultPkcs11Engine() : path(k.engine, 'keyStorage.engine'),
  };
}

/** Where Debian and Ubuntu install libp11's engine for OpenSSL 3. */
function defaultPkcs11Engine(): string {
  const triplet = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf', riscv64: 'riscv64-linux-gnu' }[process.arch as string] ?? `${process.arch}-linux-gnu`;
  return `/usr/lib/${triplet}/engines-3/pkcs11.so`;
}

function durability(value: unknown): 'fsync' | 'write' {
  if (value === undefined || value === 'fsync' || value === 'write') return value ?? 'fsync';
  throw bad('queue.durability', 'must be "fsync" or "write"');
}

function objectAt(value: unknown, key: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(key, 'must be a JSON object');
  return value as Record<string, unknown>;
}

function str(value: unknown, key: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096) throw bad(key, 'must be a non-empty string');
  return value;
}

function name(value: unknown, key: string): string {
  const s = str(value, key);
  if (!NAME.test(s)) throw bad(key, 'must be 1 to 128 letters, digits, -, _ or :');
  return s;
}

function num(value: unknown, key: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) throw bad(key, `must be a number from ${min} to ${max}`);
  return value;
}

function int(value: unknown, key: string, min: number, max: number): number {
  const n = num(value, key, min, max);
  if (!Number.isInteger(n)) throw bad(key, `must be a whole number from ${min} to ${max}`);
  return n;
}

function bad(key: string, why: string): FleetwardError {
  return new FleetwardError('FW_ERR_CONFIG_INVALID', key === '' ? `the agent configuration ${why}` : `agent configuration: ${key} ${why}`, key === '' ? {} : { key });
}
