import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';
import { loadConfig } from '../../packages/server/src/config/load-config.js';
import { toPem } from '../../packages/server/src/identity/pki/certificate.js';
import { buildCertificateRequest } from '../../packages/server/src/identity/pki/csr.js';
import { closeContext, openHome } from '../../packages/server/src/node.js';
import { progress, row, type Row } from '../lib/report.js';
import { freePort, serve } from '../updates/serve.js';

const RUNS = Number(process.env.BENCH_QUICK === '1' ? 5 : 10);
const TARGET_MS = 5_000;
/** Accepted publishes in the running window after which the profile's immediate behaviour quarantines. */
const FLOOD_THRESHOLD = 150;
const operator = { name: 'operator:bench' };

interface Device {
  readonly name: string;
  readonly keyPem: string;
  readonly certPem: string;
}

/**
 * Issue 8's end-to-end target: from a hostile device starting a flood to its quarantine. `fleetward
 * serve` in its own process (SQLite, defaults: 60 s windows, device limits 100 msg/s with a burst of
 * 200) with a security profile on the device's group whose immediate behaviour quarantines above
 * 150 messages in the running window; the device (MQTT.js, MQTT 5 over mutual TLS, its own
 * certificate) fires QoS 0 publishes as fast as it can; the time is from its first publish to the
 * API answering that the thing is quarantined (polled every 10 ms), one fresh device per run.
 */
export async function benchFloodQuarantine(): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-flood-'));
  const mqttPort = await freePort();
  const env = { FLEETWARD_HOME: join(dir, 'home'), FLEETWARD_LOG_LEVEL: 'warn', FLEETWARD_API_PORT: '0', FLEETWARD_MQTT_PORT: String(mqttPort) };
  try {
    const { devices, token, caPem } = await provision(env, RUNS);
    const node = await serve(env);
    try {
      const latencies: number[] = [];
      const closes: number[] = [];
      for (const [i, device] of devices.entries()) {
        const { quarantinedMs, closedMs } = await floodUntilQuarantined(`mqtts://127.0.0.1:${mqttPort}`, node.apiUrl, caPem, token, device);
        latencies.push(quarantinedMs);
        if (closedMs !== null) closes.push(closedMs);
        progress(`flood → quarantine ${i + 1}/${devices.length}: ${quarantinedMs.toFixed(0)} ms (connection closed at ${closedMs?.toFixed(0) ?? '-'} ms)`);
      }
      return {
        rows: [
          row(`flood → quarantine, end to end: first publish to the thing quarantined (immediate behaviour > ${FLOOD_THRESHOLD} messages)`, 'ms', latencies, { atMost: TARGET_MS }),
          row('  flood → the device\'s connection closed by the gateway', 'ms', closes),
        ],
        raw: { latencies, closes, threshold: FLOOD_THRESHOLD },
      };
    } finally {
      await node.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function provision(env: Record<string, string>, count: number): Promise<{ devices: Device[]; token: string; caPem: string }> {
  const { context } = await openHome(loadConfig({ env, flags: {} }).config, { create: true });
  try {
    await context.identity.groups.create({ name: 'hostile' }, operator);
    const { openMonitorServices } = await import('../../packages/server/src/monitor/monitor-services.js');
    const monitor = await openMonitorServices({ ...context, sink: { detected: () => Promise.resolve() } });
    await monitor.profiles.put({ name: 'flood', behaviors: [{ name: 'flood', metric: 'cloud.messagesIn', operator: 'gt', value: FLOOD_THRESHOLD, immediate: true, severity: 'critical', actions: ['quarantine'] }] }, operator);
    await monitor.profiles.attach('flood', 'hostile', operator);
    const devices: Device[] = [];
    for (let i = 0; i < count; i += 1) {
      const name = `hostile-${i}`;
      await context.identity.things.create({ name, groups: ['hostile'] }, operator);
      const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const issued = await context.identity.certificates.issue({ subject: name, kind: 'device', csr: toPem(buildCertificateRequest(name, keys), 'CERTIFICATE REQUEST'), via: 'operator', keyStorage: 'software' }, operator);
      devices.push({ name, keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem: issued.certificatePem + (issued.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? '') });
    }
    const { token } = await context.operators.create({ name: 'bench', role: 'admin' }, operator);
    return { devices, token: token.token, caPem: (await context.identity.cas.hierarchy()).chainPem };
  } finally {
    await closeContext(context);
  }
}

async function floodUntilQuarantined(mqttUrl: string, apiUrl: string, caPem: string, token: string, device: Device): Promise<{ quarantinedMs: number; closedMs: number | null }> {
  const client = await mqtt.connectAsync(mqttUrl, { ca: caPem, key: device.keyPem, cert: device.certPem, clientId: device.name, protocolVersion: 5, reconnectPeriod: 0, rejectUnauthorized: true });
  let closedMs: number | null = null;
  const started = performance.now();
  client.once('close', () => (closedMs = performance.now() - started));
  let flooding = true;
  const flood = async () => {
    for (let i = 0; flooding && closedMs === null; i += 1) {
      client.publish(`things/${device.name}/telemetry`, `{"n":${i}}`, { qos: 0 });
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
  };
  const flooded = flood();
  try {
    for (;;) {
      if ((await thingState(apiUrl, caPem, token, device.name)) === 'quarantined') return { quarantinedMs: performance.now() - started, closedMs };
      if (performance.now() - started > 30_000) throw new Error(`${device.name} was not quarantined within 30 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    flooding = false;
    await flooded;
    await client.endAsync(true).catch(() => undefined);
  }
}

function thingState(apiUrl: string, caPem: string, token: string, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${apiUrl}/api/v1/things/${name}`, { ca: caPem, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { state: string }).state));
    });
    req.on('error', reject);
    req.end();
  });
}
