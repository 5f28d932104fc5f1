/**
 * Simulated devices for the rollout part of the updates scenario: lightweight MQTT 5 clients
 * (MQTT.js, one TLS socket each, each with its own certificate and its thing name as client id)
 * that speak the job protocol and nothing else. Forked with IPC by bench/updates/rollout.ts:
 * `job-devices.ts DEVICES_JSON CA_PEM_FILE ROOT_JSON_FILE FROM COUNT SAMPLE_EVERY`.
 *
 * Each device subscribes to `$fw/things/{thing}/jobs/notify` and to its job answers
 * (`.../jobs/+/update/+`); for each queued job pushed to it, it reports in-progress (downloading),
 * in-progress (installing) and succeeded, each report sent once the previous one was accepted.
 * One device in SAMPLE_EVERY really downloads: tuf-js with the agent's fetcher (its own
 * certificate) refreshes the metadata, downloads the target and verifies its length and hash
 * against the signed metadata before reporting installing. The others do not download: 10,000
 * copies of the artifact over loopback would measure the disk, not the rollout.
 *
 * Requests: { id, cmd: 'connect', url } → { connected, failed, errors }; { id, cmd: 'stats' } →
 * counters; { id, cmd: 'close' }.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { Updater } from 'tuf-js';
import { MtlsFetcher } from '../../packages/agent/src/updates/mtls-fetcher.js';
import type { UpdateDevice } from './update-home.js';

interface Job {
  readonly jobId: string;
  readonly state: string;
  readonly target: string;
  readonly metadataUrl: string;
  readonly targetsUrl: string;
}

const [devicesFile, caFile, rootFile, fromText, countText, sampleText] = process.argv.slice(2);
if (sampleText === undefined) throw new Error('usage: job-devices.ts DEVICES_JSON CA_PEM_FILE ROOT_JSON_FILE FROM COUNT SAMPLE_EVERY');
const from = Number(fromText);
const devices = (JSON.parse(await readFile(devicesFile as string, 'utf8')) as UpdateDevice[]).slice(from, from + Number(countText));
const caPem = await readFile(caFile as string, 'utf8');
const rootJson = await readFile(rootFile as string, 'utf8');
const sampleEvery = Number(sampleText);
const CONCURRENCY = 20;
const ANSWER_TIMEOUT_MS = 60_000;
const work = await mkdtemp(join(tmpdir(), 'fw-bench-job-devices-'));

const stats = { notified: 0, started: 0, reports: 0, rejectedReports: 0, succeeded: 0, failed: 0, downloaded: 0, downloadedBytes: 0, errors: [] as string[] };
const clients: MqttClient[] = [];

function noteError(message: string): void {
  if (stats.errors.length < 10) stats.errors.push(message);
}

/** One device's session and its job protocol. */
function connectDevice(device: UpdateDevice, index: number, url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { protocolVersion: 5, clientId: device.name, key: device.keyPem, cert: device.certPem, ca: caPem, rejectUnauthorized: true, minVersion: 'TLSv1.2', reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 300, clean: true } as mqtt.IClientOptions);
    const answers = new Map<string, (ok: boolean, body: string) => void>();
    const started = new Set<string>();
    const thing = device.name;
    const refused = (error: Error): void => {
      client.end(true);
      reject(error);
    };
    client.once('error', refused);
    client.once('connect', () => {
      client.removeListener('error', refused);
      client.on('error', (error) => noteError(`${thing}: ${error.message}`));
      client.subscribe([`$fw/things/${thing}/jobs/notify`, `$fw/things/${thing}/jobs/+/update/+`], { qos: 1 }, (error, granted) => {
        if (error || granted?.some((g) => g.qos > 1)) return refused(error ?? new Error(`${thing}: subscription refused`));
        clients.push(client);
        resolve();
      });
    });
    client.on('message', (topic, payload) => {
      const levels = topic.split('/');
      if (levels[4] === 'notify') {
        stats.notified++;
        const jobs = (JSON.parse(payload.toString('utf8')) as { jobs: Job[] }).jobs;
        for (const job of jobs) {
          if (job.state !== 'queued' || started.has(job.jobId)) continue;
          started.add(job.jobId);
          stats.started++;
          run(job).catch((error: unknown) => {
            stats.failed++;
            noteError(`${thing} ${job.jobId}: ${error instanceof Error ? error.message : String(error)}`);
          });
        }
        return;
      }
      // $fw/things/{thing}/jobs/{jobId}/update/{accepted|rejected}
      const answer = answers.get(levels[4] as string);
      if (answer !== undefined && levels[5] === 'update') answer(levels[6] === 'accepted', payload.toString('utf8'));
    });

    const report = (jobId: string, update: Record<string, unknown>): Promise<void> =>
      new Promise((done, fail) => {
        const timer = setTimeout(() => fail(new Error(`no answer to ${JSON.stringify(update)}`)), ANSWER_TIMEOUT_MS);
        answers.set(jobId, (ok, body) => {
          clearTimeout(timer);
          answers.delete(jobId);
          stats.reports++;
          if (ok) done();
          else {
            stats.rejectedReports++;
            fail(new Error(`report refused: ${body}`));
          }
        });
        client.publish(`$fw/things/${thing}/jobs/${jobId}/update`, JSON.stringify({ v: 1, ...update }), { qos: 1 });
      });

    const run = async (job: Job): Promise<void> => {
      await report(job.jobId, { state: 'in-progress', step: 'downloading' });
      if (index % sampleEvery === 0) {
        const bytes = await downloadAndVerify(device, job);
        stats.downloaded++;
        stats.downloadedBytes += bytes;
      }
      await report(job.jobId, { state: 'in-progress', step: 'installing' });
      await report(job.jobId, { state: 'succeeded' });
      stats.succeeded++;
    };
  });
}

/** tuf-js as the agent runs it: the shipped root, the agent's mTLS fetcher, the signed length and hash checked. */
async function downloadAndVerify(device: UpdateDevice, job: Job): Promise<number> {
  const home = join(work, device.name);
  await mkdir(join(home, 'metadata'), { recursive: true });
  await mkdir(join(home, 'targets'), { recursive: true });
  await writeFile(join(home, 'metadata', 'root.json'), rootJson);
  const fetcher = new MtlsFetcher({ identity: () => ({ key: { pem: device.keyPem }, certPem: device.certPem, caPem }), partialDir: join(home, 'partial'), resumable: (url) => url.startsWith(job.targetsUrl) });
  const updater = new Updater({ metadataDir: join(home, 'metadata'), targetDir: join(home, 'targets'), metadataBaseUrl: job.metadataUrl, targetBaseUrl: job.targetsUrl, fetcher });
  await updater.refresh();
  const info = await updater.getTargetInfo(job.target);
  if (info === undefined) throw new Error(`${job.target} is not a signed target`);
  await updater.downloadTarget(info, join(home, 'targets', 'image.bin'));
  await rm(home, { recursive: true, force: true });
  return info.length;
}

async function connectAll(url: string): Promise<{ connected: number; failed: number; errors: string[] }> {
  let next = 0;
  let failed = 0;
  const errors: string[] = [];
  const worker = async (): Promise<void> => {
    while (next < devices.length) {
      const index = next++;
      const device = devices[index] as UpdateDevice;
      // A device retries a refused or failed connect, with backoff, as a real one would.
      for (let attempt = 0; ; attempt++) {
        try {
          await connectDevice(device, from + index, url);
          break;
        } catch (error) {
          if (attempt >= 4) {
            failed++;
            if (errors.length < 10) errors.push(`${device.name}: ${error instanceof Error ? error.message : String(error)}`);
            break;
          }
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(16_000, 500 * 2 ** attempt)));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { connected: clients.length, failed, errors };
}

process.on('message', (request: { id: number; cmd: 'connect' | 'stats' | 'close'; url?: string }) => {
  const answer = async (): Promise<unknown> => {
    if (request.cmd === 'connect') return connectAll(request.url as string);
    if (request.cmd === 'stats') return { ...stats, online: clients.filter((c) => c.connected).length };
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await rm(work, { recursive: true, force: true });
    return { closed: true };
  };
  answer().then(
    (result) => {
      process.send?.({ id: request.id, ...(result as object) });
      if (request.cmd === 'close') process.disconnect();
    },
    (error: unknown) => process.send?.({ id: request.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.send?.({ ready: true });
