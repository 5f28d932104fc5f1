/**
 * `npm run demo`: a node with embedded defaults (SQLite, a fresh data folder, loopback ports) and a
 * simulated fleet of 100 devices that provision by claim and send telemetry; then what an operator
 * sees through the API. Everything stays on 127.0.0.1 and is removed at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const DEVICES = Number(process.env.DEMO_DEVICES ?? 100);
const SECONDS = Number(process.env.DEMO_SECONDS ?? 20);
const root = fileURLToPath(new URL('../../..', import.meta.url));
const home = await mkdtemp(join(tmpdir(), 'fleetward-demo-'));
const env = { ...process.env, FLEETWARD_HOME: home, FLEETWARD_API_PORT: '0', FLEETWARD_MQTT_PORT: '0', FLEETWARD_LOG_LEVEL: 'warn' };

console.log(`Starting a Fleetward node in ${home} ...`);
const node = spawn(process.execPath, [join(root, 'packages/server/bin/fleetward.js'), 'serve', '--json'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
const ready = await new Promise<{ apiUrl: string; mqttUrl: string; bootstrapToken: { token: string } | null }>((resolve, reject) => {
  node.once('exit', (code) => reject(new Error(`the node exited with ${code}`)));
  createInterface({ input: node.stdout }).on('line', (line) => {
    const event = JSON.parse(line) as { event?: string };
    if (event.event === 'ready') resolve(event as never);
  });
});
const token = ready.bootstrapToken?.token ?? '';
console.log(`Node ready: API ${ready.apiUrl}, MQTT ${ready.mqttUrl}\n`);

const run = (command: string, args: string[]): Promise<number> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, command), ...args], { env: { ...env, FLEETWARD_URL: ready.apiUrl, FLEETWARD_TOKEN: token}, stdio: 'inherit' });
    child.once('exit', (code) => resolve(code ?? 1));
  });

let code = 1;
try {
  console.log(`Simulating ${DEVICES} devices for ${SECONDS} s: each makes its own key, trades a CSR for its own certificate with the batch's claim certificate, connects over mutual TLS and sends telemetry.\n`);
  code = await run('packages/agent/bin/fleetward-sim.js', ['--devices', String(DEVICES), '--duration', String(SECONDS), '--rate', '1', '--mqtt-url', ready.mqttUrl]);
  console.log('\nWhat the operator sees:\n');
  console.log('$ fleetward things list');
  await run('packages/server/bin/fleetward.js', ['things', 'list', '--limit', '5']);
  console.log('\n$ fleetward data inventory');
  await run('packages/server/bin/fleetward.js', ['data', 'inventory']);
  console.log('\n$ fleetward audit events --action provisioning.claim --limit 5');
  await run('packages/server/bin/fleetward.js', ['audit', 'events', '--action', 'provisioning.claim', '--limit', '5']);
} finally {
  node.kill('SIGTERM');
  await new Promise((resolve) => node.once('exit', resolve));
  await rm(home, { recursive: true, force: true });
}
process.exitCode = code;
