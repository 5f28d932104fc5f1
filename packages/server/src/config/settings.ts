import semver from 'semver';
import { THROTTLE_SETTING_KEYS, THROTTLE_SETTING_SPECS, throttleSettingEnv, type ThrottleSettingKey } from '../access/throttling/throttle-settings.js';
import { UNMATCHED_MODES } from '../data/evaluate-publish.js';
import { hostName, hostNameList, httpsUrl, integer, oneOf, optionalPort, optionalPath, optionalText, postgresUrl, redactUrlPassword, redisUrl, sqlIdentifier, text, type ValueParser } from './values.js';

/**
 * Every configuration key Fleetward reads, with its environment variable, optional CLI flag,
 * secure default and the shape of a valid value. The Config type, the loader, `config check`,
 * the CLI flags and docs/configuration.md are all derived from this table.
 */
export interface Setting<T> {
  readonly env: `FLEETWARD_${string}`;
  /** Long CLI flag (without `--`) accepted by `init`, `serve` and `config check`. */
  readonly flag?: string;
  readonly default: T;
  readonly parse: ValueParser<T>;
  /** What a valid value looks like, for error messages and docs. */
  readonly expected: string;
  readonly description: string;
  /** How to print the value without leaking a secret. */
  readonly redact?: (value: T) => unknown;
}

function setting<T>(spec: Setting<T>): Setting<T> {
  return spec;
}

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export const CA_KEY_ALGORITHMS = ['ECDSA-P256', 'ECDSA-P384'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const KEY_CUSTODIES = ['sealed', 'pkcs11'] as const;

export const settings = {
  home: setting({
    env: 'FLEETWARD_HOME', flag: 'home', default: './.fleetward', parse: text(4096),
    expected: 'a folder path', description: 'Data folder: keys, database, CA chain. Created 0700; refused if others can read it.',
  }),
  host: setting({
    env: 'FLEETWARD_HOST', flag: 'host', default: '127.0.0.1', parse: hostName,
    expected: 'an IP address or DNS name', description: 'Address the API (and later the MQTT gateway) listens on. Loopback until you choose otherwise.',
  }),
  api: {
    port: setting({
      env: 'FLEETWARD_API_PORT', flag: 'api-port', default: 8443, parse: integer(0, 65535),
      expected: 'an integer port between 0 and 65535', description: 'HTTPS port of the operator API; 0 picks any free port (the start-up message names it).',
    }),
    bodyLimitBytes: setting({
      env: 'FLEETWARD_API_BODY_LIMIT_BYTES', default: 1_048_576, parse: integer(1024, 64 * 1_048_576),
      expected: 'an integer number of bytes between 1024 and 67108864', description: 'Largest request body the API accepts (bytes); larger bodies get 413.',
    }),
  },
  mqtt: {
    port: setting({
      env: 'FLEETWARD_MQTT_PORT', flag: 'mqtt-port', default: 8883, parse: integer(0, 65535),
      expected: 'an integer port between 0 and 65535', description: 'Port of the device gateway: MQTT 3.1.1 and 5.0 over TLS with a client certificate required; 0 picks any free port (the start-up message names it).',
    }),
    websocketPort: setting<number | null>({
      env: 'FLEETWARD_MQTT_WEBSOCKET_PORT', flag: 'mqtt-websocket-port', default: null, parse: optionalPort,
      expected: 'an integer port between 0 and 65535, or empty for none', description: 'Port of MQTT over secure WebSockets (`wss://host:port/mqtt`), with the same mutual TLS and admission as the MQTT port. Unset: not served.',
    }),
  },
  limits: limitSettings(),
  tls: {
    minVersion: setting<(typeof TLS_VERSIONS)[number]>({
      env: 'FLEETWARD_TLS_MIN_VERSION', default: 'TLSv1.2', parse: oneOf(TLS_VERSIONS),
      expected: `one of ${TLS_VERSIONS.join(', ')}`, description: 'Lowest TLS version any listener accepts. Nothing below TLS 1.2 can be configured.',
    }),
    hostnames: setting<readonly string[]>({
      env: 'FLEETWARD_TLS_HOSTNAMES', flag: 'tls-hostnames', default: ['localhost', '127.0.0.1', '::1'], parse: hostNameList,
      expected: 'a comma-separated list (or JSON array) of DNS names and IP addresses',
      description: 'Names and addresses the server certificate is valid for (subject alternative names).',
    }),
    sessionResumptionHours: setting({
      env: 'FLEETWARD_TLS_SESSION_RESUMPTION_HOURS', default: 24, parse: integer(0, 168),
      expected: 'an integer number of hours between 0 and 168 (TLS 1.3 allows a week at most)',
      description: 'How long a device may resume its TLS session with a ticket instead of a full handshake (about half the TLS CPU on both sides of a reconnect storm). Ticket keys derive from the key ring, rotate every period and whenever the trusted CAs change; admission checks the registry on every connection. 0: no tickets.',
    }),
    serverCertValidityDays: setting({
      env: 'FLEETWARD_TLS_SERVER_CERT_VALIDITY_DAYS', default: 90, parse: integer(1, 397),
      expected: 'an integer number of days between 1 and 397', description: 'Lifetime of the server certificate; it is renewed at start-up once two thirds of it have passed.',
    }),
  },
  ca: {
    name: setting({
      env: 'FLEETWARD_CA_NAME', default: 'Fleetward', parse: text(64),
      expected: 'a name of at most 64 printable characters', description: 'Organization name written into the CA certificates.',
    }),
    keyAlgorithm: setting<(typeof CA_KEY_ALGORITHMS)[number]>({
      env: 'FLEETWARD_CA_KEY_ALGORITHM', default: 'ECDSA-P256', parse: oneOf(CA_KEY_ALGORITHMS),
      expected: `one of ${CA_KEY_ALGORITHMS.join(', ')}`, description: 'Key algorithm of the root and issuing CAs created by `fleetward init`.',
    }),
    rootValidityDays: setting({
      env: 'FLEETWARD_CA_ROOT_VALIDITY_DAYS', default: 3650, parse: integer(365, 36500),
      expected: 'an integer number of days between 365 and 36500', description: 'Lifetime of the root CA certificate.',
    }),
    issuingValidityDays: setting({
      env: 'FLEETWARD_CA_ISSUING_VALIDITY_DAYS', default: 730, parse: integer(30, 3650),
      expected: 'an integer number of days between 30 and 3650', description: 'Lifetime of the online issuing CA certificate.',
    }),
  },
  pki: {
    baseUrl: setting<string | null>({
      env: 'FLEETWARD_PKI_BASE_URL', default: null, parse: httpsUrl,
      expected: 'an https:// URL, or empty for the API URL', description: 'Base URL written into certificates for the CRL (/pki/crl/<ca>), OCSP (/pki/ocsp) and CA chain (/pki/ca.pem). Unset: https://<first TLS host name>:<API port>.',
    }),
    deviceCertValidityDays: setting({
      env: 'FLEETWARD_PKI_DEVICE_CERT_VALIDITY_DAYS', default: 30, parse: integer(1, 397),
      expected: 'an integer number of days between 1 and 397', description: 'Lifetime of device certificates (short by default; devices renew before expiry).',
    }),
    claimCertValidityDays: setting({
      env: 'FLEETWARD_PKI_CLAIM_CERT_VALIDITY_DAYS', default: 365, parse: integer(1, 3650),
      expected: 'an integer number of days between 1 and 3650', description: 'Lifetime of claim certificates, which are built into devices at manufacturing and only allow provisioning.',
    }),
    crlValidityHours: setting({
      env: 'FLEETWARD_PKI_CRL_VALIDITY_HOURS', default: 24, parse: integer(1, 168),
      expected: 'an integer number of hours between 1 and 168', description: 'How long a published CRL is valid (its nextUpdate). CRLs are regenerated on every revocation and at least every quarter of this.',
    }),
    keyCustody: setting<(typeof KEY_CUSTODIES)[number]>({
      env: 'FLEETWARD_PKI_KEY_CUSTODY', default: 'sealed', parse: oneOf(KEY_CUSTODIES),
      expected: `one of ${KEY_CUSTODIES.join(', ')}`, description: 'Where new CA keys are made and kept: sealed with the key-encryption key, or non-extractable in a PKCS#11 token (pki.pkcs11.*).',
    }),
    pkcs11Module: setting<string | null>({
      env: 'FLEETWARD_PKI_PKCS11_MODULE', default: null, parse: optionalPath,
      expected: 'an absolute path to a PKCS#11 module (.so)', description: 'PKCS#11 module holding CA keys (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so).',
    }),
    pkcs11TokenLabel: setting<string | null>({
      env: 'FLEETWARD_PKI_PKCS11_TOKEN_LABEL', default: null, parse: optionalText(32),
      expected: 'a token label of at most 32 characters', description: 'Label of the PKCS#11 token holding CA keys.',
    }),
    pkcs11PinFile: setting<string | null>({
      env: 'FLEETWARD_PKI_PKCS11_PIN_FILE', default: null, parse: optionalPath,
      expected: 'an absolute path to a 0600 file', description: 'File holding the token PIN (refused if others can read it). Or set FLEETWARD_PKI_PKCS11_PIN.',
    }),
    pkcs11Pin: setting<string | null>({
      env: 'FLEETWARD_PKI_PKCS11_PIN', default: null, parse: optionalText(256), redact: (v) => (v === null ? null : '***'),
      expected: 'the token PIN', description: 'PIN of the PKCS#11 token (never printed). Prefer pki.pkcs11PinFile.',
    }),
    renewalWindowDays: setting({
      env: 'FLEETWARD_PKI_RENEWAL_WINDOW_DAYS', default: 7, parse: integer(1, 90),
      expected: 'an integer number of days between 1 and 90', description: 'Overlap window: after a renewal the previous certificate stays valid at most this long; a thing with two active certificates for longer is a credential audit finding.',
    }),
    expiryWarningDays: setting({
      env: 'FLEETWARD_PKI_EXPIRY_WARNING_DAYS', default: 3, parse: integer(1, 90),
      expected: 'an integer number of days between 1 and 90', description: 'Credential audit: an active device certificate closer than this to expiry (its device has not renewed) is a finding.',
    }),
    caExpiryWarningDays: setting({
      env: 'FLEETWARD_PKI_CA_EXPIRY_WARNING_DAYS', default: 90, parse: integer(1, 3650),
      expected: 'an integer number of days between 1 and 3650', description: 'Credential audit: a CA in use closer than this to expiry is a finding.',
    }),
    unusedCertificateDays: setting({
      env: 'FLEETWARD_PKI_UNUSED_CERTIFICATE_DAYS', default: 7, parse: integer(1, 365),
      expected: 'an integer number of days between 1 and 365', description: 'Credential audit: an active device certificate issued this long ago and never used to connect is a finding.',
    }),
    credentialAuditIntervalHours: setting({
      env: 'FLEETWARD_PKI_CREDENTIAL_AUDIT_INTERVAL_HOURS', default: 24, parse: integer(1, 720),
      expected: 'an integer number of hours between 1 and 720', description: 'How often the whole fleet\'s credentials are audited (lifecycle changes re-check a thing at once).',
    }),
  },
  database: {
    url: setting<string | null>({
      env: 'FLEETWARD_DATABASE_URL', default: null, parse: postgresUrl, redact: (v) => (v === null ? null : redactUrlPassword(v)),
      expected: 'a postgres:// or postgresql:// URL, or empty for SQLite', description: 'PostgreSQL connection URL. Unset: SQLite file `fleetward.db` in the data folder.',
    }),
    schema: setting({
      env: 'FLEETWARD_DATABASE_SCHEMA', default: 'public', parse: sqlIdentifier,
      expected: 'a lower-case SQL identifier', description: 'PostgreSQL schema holding Fleetward tables (created if missing).',
    }),
    poolSize: setting({
      env: 'FLEETWARD_DATABASE_POOL_SIZE', default: 10, parse: integer(1, 200),
      expected: 'an integer between 1 and 200', description: 'Largest number of PostgreSQL connections a node opens.',
    }),
  },
  data: {
    unmatchedTopics: setting<(typeof UNMATCHED_MODES)[number]>({
      env: 'FLEETWARD_DATA_UNMATCHED_TOPICS', default: 'refuse', parse: oneOf(UNMATCHED_MODES),
      expected: `one of ${UNMATCHED_MODES.join(', ')}`,
      description: 'What the gateway does with an application publish no data contract covers: refuse it (MQTT 5: 0x87), or pass it on unclassified and unstored (reported in the privacy inventory).',
    }),
    maxPendingMessages: setting({
      env: 'FLEETWARD_DATA_MAX_PENDING_MESSAGES', default: 50_000, parse: integer(100, 10_000_000),
      expected: 'an integer between 100 and 10000000', description: 'Accepted messages waiting to be stored; beyond it new data is refused (MQTT 5: 0x97) rather than held in memory.',
    }),
  },
  redis: {
    url: setting<string | null>({
      env: 'FLEETWARD_REDIS_URL', default: null, parse: redisUrl, redact: (v) => (v === null ? null : redactUrlPassword(v)),
      expected: 'a redis:// or rediss:// URL, or empty for a single node',
      description: 'Redis shared by the nodes of a cluster: MQTT sessions, offline queues, retained messages and fan-out between nodes. Unset: one node, in memory.',
    }),
    keyPrefix: setting({
      env: 'FLEETWARD_REDIS_KEY_PREFIX', default: 'fleetward:', parse: text(64),
      expected: 'a key prefix of at most 64 characters', description: 'Prefix of every Redis key; the nodes of one cluster share it, another cluster on the same Redis uses another.',
    }),
  },
  auth: {
    tokenTtlDays: setting({
      env: 'FLEETWARD_AUTH_TOKEN_TTL_DAYS', default: 90, parse: integer(1, 365),
      expected: 'an integer number of days between 1 and 365', description: 'Default lifetime of operator API tokens.',
    }),
    bootstrapTokenTtlHours: setting({
      env: 'FLEETWARD_AUTH_BOOTSTRAP_TOKEN_TTL_HOURS', default: 24, parse: integer(1, 168),
      expected: 'an integer number of hours between 1 and 168', description: 'Lifetime of the one-time bootstrap admin token printed on first start.',
    }),
    failureLimit: setting({
      env: 'FLEETWARD_AUTH_FAILURE_LIMIT', default: 10, parse: integer(1, 10_000),
      expected: 'an integer between 1 and 10000', description: 'Failed authentications from one source address within the window before it is blocked (429).',
    }),
    failureWindowSeconds: setting({
      env: 'FLEETWARD_AUTH_FAILURE_WINDOW_SECONDS', default: 300, parse: integer(1, 86_400),
      expected: 'an integer number of seconds between 1 and 86400', description: 'Window for counting failed authentications; a blocked source stays blocked this long after its last failure.',
    }),
  },
  updates: {
    maxArtifactMib: setting({
      env: 'FLEETWARD_UPDATES_MAX_ARTIFACT_MIB', default: 1024, parse: integer(1, 16_384),
      expected: 'an integer number of MiB between 1 and 16384', description: 'Largest firmware artifact that can be uploaded.',
    }),
    timestampHours: setting({
      env: 'FLEETWARD_UPDATES_TIMESTAMP_HOURS', default: 24, parse: integer(1, 720),
      expected: 'an integer number of hours between 1 and 720', description: 'Lifetime of TUF timestamp metadata (re-signed online at half of it): a device that cannot get a fresh one within this time refuses updates (freeze attack).',
    }),
    snapshotDays: setting({
      env: 'FLEETWARD_UPDATES_SNAPSHOT_DAYS', default: 7, parse: integer(1, 365),
      expected: 'an integer number of days between 1 and 365', description: 'Lifetime of TUF snapshot metadata (re-signed online at half of it).',
    }),
    quarantineUnauthorized: setting<'on' | 'off'>({
      env: 'FLEETWARD_UPDATES_QUARANTINE_UNAUTHORIZED', default: 'off', parse: oneOf(['on', 'off'] as const),
      expected: 'on or off', description: 'Quarantine a device that reports running an image that is not a signed target of its thing type (an alert is raised either way).',
    }),
    minAgentVersion: setting({
      env: 'FLEETWARD_UPDATES_MIN_AGENT_VERSION', default: '0.1.0', parse: semanticVersion,
      expected: 'a semantic version like 0.1.0', description: 'The oldest fleetward-agent that takes update jobs: devices reporting an older agent are listed by `fleetward deploy cannot-update` (replace or re-image them).',
    }),
    rolloutIntervalSeconds: setting({
      env: 'FLEETWARD_UPDATES_ROLLOUT_INTERVAL_SECONDS', default: 5, parse: integer(1, 3600),
      expected: 'an integer number of seconds between 1 and 3600', description: 'How often deployments are advanced: jobs released, stalled devices timed out, abort thresholds checked.',
    }),
  },
  monitor: {
    windowSeconds: setting({
      env: 'FLEETWARD_MONITOR_WINDOW_SECONDS', default: 60, parse: integer(10, 3600),
      expected: 'an integer number of seconds between 10 and 3600',
      description: 'Length of a security metrics window (rule 5): cloud-side and device-side metrics are kept per device per window, and detection evaluates each window when it closes.',
    }),
    retentionDays: setting({
      env: 'FLEETWARD_MONITOR_RETENTION_DAYS', default: 14, parse: integer(1, 3650),
      expected: 'an integer number of days between 1 and 3650', description: 'How long per-device security metrics windows are kept; older windows are deleted hourly.',
    }),
    geoipFile: setting<string | null>({
      env: 'FLEETWARD_MONITOR_GEOIP_FILE', default: null, parse: optionalPath,
      expected: 'an absolute path to a CSV file of `cidr,country` lines, or empty for none',
      description: 'Address-to-country table for the "new source country" detection rule. Unset: that rule is off (new source addresses are still detected).',
    }),
  },
  health: {
    canaries: setting<'on' | 'off'>({
      env: 'FLEETWARD_HEALTH_CANARIES', default: 'on', parse: oneOf(['on', 'off'] as const),
      expected: 'on or off',
      description: 'Run the canaries (rule 6). Off is less secure: nothing proves the controls still hold; the node then reports the controls as not checked.',
    }),
    canaryIntervalSeconds: setting({
      env: 'FLEETWARD_HEALTH_CANARY_INTERVAL_SECONDS', default: 300, parse: integer(10, 86_400),
      expected: 'an integer number of seconds between 10 and 86400',
      description: 'How often the canaries attack this node\'s own listeners to prove each security control still refuses what it must (docs/rule-06-canaries.md). A control that fails makes the node not ready.',
    }),
    failClosedGraceSeconds: setting({
      env: 'FLEETWARD_HEALTH_FAIL_CLOSED_GRACE_SECONDS', default: 300, parse: integer(1, 3600),
      expected: 'an integer number of seconds between 1 and 3600',
      description: 'Fail closed (rule 6): while the database or Redis is unreachable, devices already connected keep the policy they were admitted with for at most this long (revocations made meanwhile cannot reach this node); then they are disconnected (MQTT 5: 0x89) and new ones refused (0x88) until it is back.',
    }),
  },
  audit: {
    checkpointSeconds: setting({
      env: 'FLEETWARD_AUDIT_CHECKPOINT_SECONDS', default: 60, parse: integer(1, 86_400),
      expected: 'an integer number of seconds between 1 and 86400',
      description: 'How often a serving node signs an audit checkpoint (the newest event\'s sequence number and hash, Ed25519); events newer than the last checkpoint are protected by the hash chain only.',
    }),
    checkpointEvents: setting({
      env: 'FLEETWARD_AUDIT_CHECKPOINT_EVENTS', default: 10_000, parse: integer(0, 10_000_000),
      expected: 'an integer between 0 and 10000000',
      description: 'Also sign an audit checkpoint once this many events were appended since the last one (0: by time only).',
    }),
    syslogUrl: setting<string | null>({
      env: 'FLEETWARD_AUDIT_SYSLOG_URL', default: null, parse: tlsUrl,
      expected: 'a tls://host:port URL, or empty for none',
      description: 'External collector that receives every audit event as RFC 5424 syslog over TLS (RFC 5425 framing), from a cursor that survives restarts and outages. Unset: no export.',
    }),
    syslogCaFile: setting<string | null>({
      env: 'FLEETWARD_AUDIT_SYSLOG_CA_FILE', default: null, parse: optionalPath,
      expected: 'an absolute file path, or empty for the system roots', description: 'CA certificates (PEM) that the syslog collector\'s certificate must chain to.',
    }),
    syslogCertFile: setting<string | null>({
      env: 'FLEETWARD_AUDIT_SYSLOG_CERT_FILE', default: null, parse: optionalPath,
      expected: 'an absolute file path, or empty', description: 'Client certificate (PEM) presented to the syslog collector, for collectors that require mutual TLS.',
    }),
    syslogKeyFile: setting<string | null>({
      env: 'FLEETWARD_AUDIT_SYSLOG_KEY_FILE', default: null, parse: optionalPath,
      expected: 'an absolute file path, or empty', description: 'Private key (PEM, unencrypted, mode 0600) of the syslog client certificate.',
    }),
    syslogIntervalSeconds: setting({
      env: 'FLEETWARD_AUDIT_SYSLOG_INTERVAL_SECONDS', default: 5, parse: integer(1, 3600),
      expected: 'an integer number of seconds between 1 and 3600', description: 'How often the syslog export sends the events appended since its cursor (and retries after a collector outage).',
    }),
    syslogBatchEvents: setting({
      env: 'FLEETWARD_AUDIT_SYSLOG_BATCH_EVENTS', default: 1000, parse: integer(1, 100_000),
      expected: 'an integer between 1 and 100000', description: 'Events per TLS session to the syslog collector; the cursor advances after each session closes cleanly.',
    }),
  },
  log: {
    level: setting<(typeof LOG_LEVELS)[number]>({
      env: 'FLEETWARD_LOG_LEVEL', flag: 'log-level', default: 'info', parse: oneOf(LOG_LEVELS),
      expected: `one of ${LOG_LEVELS.join(', ')}`, description: 'Lowest level written to the JSON log on stdout.',
    }),
  },
} as const;

/** `tls://host:port` of a syslog collector (RFC 5425); no path, credentials or query. */
function tlsUrl(raw: unknown): string | null | undefined {
  if (raw === null || raw === '') return null;
  if (typeof raw !== 'string') return undefined;
  try {
    const url = new URL(raw);
    return url.protocol === 'tls:' && url.hostname !== '' && url.port !== '' && (url.pathname === '' || url.pathname === '/') && url.search === '' && url.hash === '' && url.username === '' ? `tls://${url.host}` : undefined;
  } catch {
    return undefined;
  }
}

function semanticVersion(raw: unknown): string | undefined {
  return typeof raw === 'string' && semver.valid(raw) === raw ? raw : undefined;
}

/** One setting per device limit of the gateway (rules 2 and 3); docs/limits.md explains each. */
function limitSettings(): Readonly<Record<ThrottleSettingKey, Setting<number>>> {
  const words = (key: string) => key.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
  return Object.fromEntries(
    THROTTLE_SETTING_KEYS.map((key) => {
      const { min, max, default: value } = THROTTLE_SETTING_SPECS[key];
      return [key, setting({ env: throttleSettingEnv(key), default: value, parse: integer(min, max), expected: `an integer between ${min} and ${max}`, description: `Device limit: ${words(key)} (docs/limits.md).` })];
    }),
  ) as Record<ThrottleSettingKey, Setting<number>>;
}

type ConfigOf<S> = { readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : ConfigOf<S[K]> };

/** The effective, validated configuration of a node. */
export type Config = ConfigOf<typeof settings>;

export interface FlatSetting {
  readonly key: string;
  readonly spec: Setting<unknown>;
}

function isSetting(value: object): value is Setting<unknown> {
  return 'env' in value && 'parse' in value;
}

/** The settings table as a list of dotted keys (`api.port`), in declaration order. */
export function flattenSettings(tree: object = settings, prefix = ''): FlatSetting[] {
  return Object.entries(tree).flatMap(([name, value]: [string, object]) => {
    const key = prefix + name;
    return isSetting(value) ? [{ key, spec: value }] : flattenSettings(value, `${key}.`);
  });
}

/** The operator API's URL; `port` is the bound port when the configuration asked for any (0). */
export function apiUrl(config: Config, port: number = config.api.port): string {
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return `https://${host}:${port}`;
}

/** Where certificates point relying parties for CRLs, OCSP and the CA chain. */
export function pkiBaseUrl(config: Config): string {
  if (config.pki.baseUrl !== null) return config.pki.baseUrl;
  const host = config.tls.hostnames[0] ?? config.host;
  return `https://${host.includes(':') ? `[${host}]` : host}:${config.api.port}`;
}

/** Variables in the FLEETWARD_ namespace that are read by CLI clients, not by the node. */
export const CLIENT_ENVIRONMENT = ['FLEETWARD_URL', 'FLEETWARD_TOKEN', 'FLEETWARD_CA_FILE', 'FLEETWARD_ROOT_KEY_PASSPHRASE'] as const;
