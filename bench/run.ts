/**
 * Benchmark harness: `npm run bench -- [scenario...]` (no names: every scenario).
 * Prints a markdown table per scenario and writes bench/results/<scenario>-<timestamp>.json.
 * Exits with 1 when a measured median misses its target.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { arch, cpus, loadavg, release, totalmem } from 'node:os';
import { resultTable, type Scenario } from './lib/report.js';
import { audit } from './scenarios/audit.js';
import { data } from './scenarios/data.js';
import { fleet } from './scenarios/fleet.js';
import { monitoring } from './scenarios/monitoring.js';
import { policy } from './scenarios/policy.js';
import { broker } from './scenarios/broker.js';
import { gateway } from './scenarios/gateway.js';
import { pki } from './scenarios/pki.js';
import { startup } from './scenarios/startup.js';
import { throttle } from './scenarios/throttle.js';
import { updates } from './scenarios/updates.js';

const SCENARIOS: readonly Scenario[] = [startup, audit, pki, broker, gateway, policy, throttle, data, fleet, monitoring, updates];
const RESULTS_DIR = new URL('./results/', import.meta.url);

const names = process.argv.slice(2);
const unknown = names.filter((name) => !SCENARIOS.some((s) => s.name === name));
if (unknown.length > 0) {
  console.error(`unknown scenario: ${unknown.join(', ')}\nusage: npm run bench -- [${SCENARIOS.map((s) => s.name).join(' | ')} ...]`);
  process.exit(2);
}
const selected = names.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name));

const machine = { node: process.version, platform: process.platform, arch: arch(), kernel: release(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryMb: Math.round(totalmem() / 1_048_576) };
let missed = false;

for (const scenario of selected) {
  console.error(`\n# ${scenario.name}: ${scenario.description}`);
  const startedAt = new Date();
  // Other work on the machine skews the figures: the load average at the start is kept with them.
  const loadAverage = loadavg().map((load) => Number(load.toFixed(2)));
  const result = await scenario.run();
  const finishedAt = new Date();
  missed ||= result.rows.some((r) => r.verdict === 'FAIL');

  console.log(`\n## ${scenario.name} (${startedAt.toISOString()})\n\n${resultTable(result.rows)}`);
  if (result.summary !== undefined) console.log(`\n${result.summary}`);

  await mkdir(RESULTS_DIR, { recursive: true });
  // ISO 8601 basic format (no colons) so the name is a valid file name everywhere.
  const stamp = startedAt.toISOString().replace(/[-:]/g, '');
  const file = new URL(`${scenario.name}-${stamp}.json`, RESULTS_DIR);
  const record = { scenario: scenario.name, description: scenario.description, startedAt, finishedAt, machine, loadAverage, rows: result.rows, raw: result.raw };
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  console.error(`  results written to ${file.pathname}`);
}

process.exitCode = missed ? 1 : 0;
