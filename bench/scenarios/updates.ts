/**
 * `npm run bench -- updates`: rule 4's three targets.
 *
 * 1. Metadata generation, in this process (fresh SQLite data folder): 10,000 artifacts uploaded
 *    (not timed), then propose → sign offline → import (threshold and every target verified,
 *    snapshot and timestamp signed online), each part timed; median of 5 rounds, target < 2 s.
 * 2. Artifact download: `fleetward serve` in its own process serving a 256 MiB signed artifact
 *    over mTLS to one device, against a bare node:https server (own process, same TLS settings)
 *    serving the same file, alternating; then the agent's fetcher. MB = 1,000,000 bytes. ≥ 200 MB/s.
 * 3. Rollout: `fleetward serve` (rollout tick every second) and 10,000 devices as MQTT 5 clients
 *    over mTLS in child processes of 2,500, a deployment in phases 1%, 10%, 50%, 100% created
 *    over the API; devices answer the job protocol, one in 500 downloads and verifies with tuf-js.
 *    Server CPU (utime+stime) and memory (VmRSS, VmHWM) from /proc.
 *
 * BENCH_QUICK=1: 1,000 targets, 32 MiB, 500 devices. BENCH_UPDATES_PARTS=metadata,download,rollout picks parts.
 */
import { chosenParts } from '../lib/parts.js';
import { markdownTable, missingRow, progress, row, type Row, type Scenario } from '../lib/report.js';
import { measureDownload } from '../updates/download.js';
import { measureMetadataGeneration } from '../updates/metadata-generation.js';
import { measureRollout, PHASES } from '../updates/rollout.js';
import { provisionUpdateHome } from '../updates/update-home.js';

const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = 5;
const TARGETS = QUICK ? 1_000 : 10_000;
const ARTIFACT_MIB = QUICK ? 32 : 256;
const DEVICES = QUICK ? 500 : 10_000;
/** One device in this many really downloads and verifies the artifact with tuf-js during the rollout. */
const SAMPLE_EVERY = 500;
const METADATA_TARGET_MS = 2_000;
const DOWNLOAD_TARGET = 200;
const PARTS = chosenParts('BENCH_UPDATES_PARTS', ['metadata', 'download', 'rollout'] as const);

export const updates: Scenario = {
  name: 'updates',
  description: `OTA updates: targets metadata for ${TARGETS.toLocaleString('en-US')} artifacts (propose, sign offline, import); a ${ARTIFACT_MIB} MiB artifact over mTLS vs plain node:https; a 4-phase deployment to ${DEVICES.toLocaleString('en-US')} MQTT devices`,
  async run() {
    const rows: Row[] = [];
    const raw: Record<string, unknown> = { targets: TARGETS, artifactMiB: ARTIFACT_MIB, devices: DEVICES, sampleEvery: SAMPLE_EVERY, runs: RUNS, quick: QUICK };
    const summary: string[] = [];

    if (PARTS.has('metadata')) {
      progress(`metadata generation: ${TARGETS} targets`);
      const { rounds, uploadSeconds } = await measureMetadataGeneration(TARGETS, RUNS);
      raw.metadata = { rounds, uploadSeconds };
      const full = TARGETS >= 10_000;
      const pick = (key: keyof (typeof rounds)[number]) => rounds.map((r) => r[key]);
      rows.push(row(`metadata for ${TARGETS.toLocaleString('en-US')} targets: propose + sign + import (snapshot, timestamp)`, 'ms', pick('totalMs'), full ? { below: METADATA_TARGET_MS } : null, full ? undefined : 'the target is for 10,000'));
      rows.push(row('  propose targets metadata (every artifact listed)', 'ms', pick('proposeMs')));
      rows.push(row('  sign offline (Ed25519 targets key, canonical JSON)', 'ms', pick('signMs')));
      rows.push(row('  import: threshold + every target verified, stored, snapshot + timestamp signed', 'ms', pick('importMs')));
      rows.push(row('    of which verifyTargets alone (measured apart, same document)', 'ms', pick('verifyMs')));
      rows.push(row(`  upload of the ${TARGETS.toLocaleString('en-US')} artifacts (not timed in the target)`, 's', [uploadSeconds]));
    }

    if (PARTS.has('download') || PARTS.has('rollout')) {
      const devices = PARTS.has('rollout') ? DEVICES : 1;
      progress(`provisioning: ${devices} things with certificates, a ${ARTIFACT_MIB} MiB and a 1 MiB artifact signed`);
      const started = Date.now();
      const home = await provisionUpdateHome(devices, ARTIFACT_MIB * 1024 * 1024);
      raw.provisionSeconds = (Date.now() - started) / 1000;
      try {
        if (PARTS.has('download')) {
          progress(`download: ${ARTIFACT_MIB} MiB, ${RUNS} runs per server`);
          const d = await measureDownload(home, RUNS);
          raw.download = d;
          const ratios = d.fleetward.map((r, i) => r.mbPerSecond / (d.plain[i]?.mbPerSecond ?? NaN));
          rows.push(row(`download ${ARTIFACT_MIB} MiB over mTLS from fleetward serve, one device (MB = 10^6 bytes)`, 'MB/s', d.fleetward.map((r) => r.mbPerSecond), { atLeast: DOWNLOAD_TARGET }, d.tls.fleetward));
          rows.push(row('  same file, plain node:https server, same TLS settings', 'MB/s', d.plain.map((r) => r.mbPerSecond), null, d.tls.plain));
          rows.push(row('  fleetward / plain, run by run', '×', ratios));
          rows.push(row('  server CPU per MB: fleetward', 'µs', [d.cpuPerMb.fleetward * 1e6]));
          rows.push(row('  server CPU per MB: plain node:https', 'µs', [d.cpuPerMb.plain * 1e6]));
          rows.push(row(`  through the agent's MtlsFetcher (tuf-js downloadFile: partial file + temporary file on disk)`, 'MB/s', d.fetcher.map((r) => r.mbPerSecond)));
        }
        if (PARTS.has('rollout')) {
          progress(`rollout: ${DEVICES} devices, phases ${PHASES.join(', ')}`);
          const r = await measureRollout(home, DEVICES, SAMPLE_EVERY);
          raw.rollout = r;
          const succeeded = r.counts.succeeded ?? 0;
          const downloaded = r.deviceStats.reduce((n, s) => n + (s.downloaded as number), 0);
          const failed = r.deviceStats.reduce((n, s) => n + (s.failed as number), 0);
          const errors = r.deviceStats.flatMap((s) => s.errors as string[]).slice(0, 3);
          rows.push(row(`${DEVICES.toLocaleString('en-US')} MQTT 5 devices (mTLS, ${r.processes} processes) connected`, 's', [r.connectSeconds], null, `${r.connected} connected, ${r.connectFailures} gave up; server CPU ${r.connectCpuSeconds.toFixed(1)} s`));
          const verdictNote = `deployment ${r.state}${r.reason ? ` (${r.reason})` : ''}; ${succeeded} of ${r.counts.total} succeeded; ${downloaded} devices downloaded and verified with tuf-js; ${failed} device-side failures${errors.length > 0 ? `: ${errors.join('; ')}` : ''}`;
          rows.push(row(`deployment to ${DEVICES.toLocaleString('en-US')} devices in 4 phases: jobs succeeded`, '%', [(100 * succeeded) / Math.max(1, r.counts.total)], { atLeast: 100 }, verdictNote));
          rows.push(row('  rollout wall time, creation to completed (tick every 1 s)', 's', [r.rolloutSeconds]));
          for (const p of r.phases) {
            rows.push(row(`  phase ${p.phase + 1} (${p.size} devices): first release → last job final`, 's', [p.finishedAt - p.releasedAt], null, `${p.releasedAt.toFixed(2)} s → ${p.finishedAt.toFixed(2)} s after creation; a job release → final p50 ${p.jobP50.toFixed(2)} s, p99 ${p.jobP99.toFixed(2)} s`));
          }
          rows.push(row('  server CPU during the rollout (utime+stime)', 's', [r.rolloutCpuSeconds], null, `${((100 * r.rolloutCpuSeconds) / r.rolloutSeconds).toFixed(0)} % of one core on average`));
          rows.push(row('  server RSS, started, no device', 'MiB', [r.memory.idle / 1024]));
          rows.push(row(`  server RSS, ${r.connected} devices connected, before the deployment`, 'MiB', [r.memory.connected / 1024]));
          rows.push(row('  server RSS, highest sampled during the rollout', 'MiB', [r.memory.rolloutMax / 1024]));
          rows.push(row('  server peak RSS (VmHWM) at the end', 'MiB', [r.memory.peak / 1024]));
          summary.push(
            markdownTable(
              ['Phase', 'Devices', 'First release (s after creation)', 'Last job final (s after creation)', 'Job release → final, p50 / p99'],
              r.phases.map((p) => [String(p.phase + 1), String(p.size), p.releasedAt.toFixed(2), p.finishedAt.toFixed(2), `${p.jobP50.toFixed(2)} s / ${p.jobP99.toFixed(2)} s`]),
            ),
          );
        }
      } catch (error) {
        rows.push(missingRow('download / rollout', 's', null, error instanceof Error ? error.message : String(error)));
        throw error;
      } finally {
        await home.remove();
      }
    }
    if (rows.length === 0) rows.push(missingRow('nothing measured', 's', null, `BENCH_UPDATES_PARTS=${[...PARTS].join(',')}`));
    raw.medians = Object.fromEntries(rows.filter((r) => r.stats !== null).map((r) => [r.metric, r.stats?.median]));
    return { rows, raw, ...(summary.length > 0 && { summary: summary.join('\n\n') }) };
  },
};
