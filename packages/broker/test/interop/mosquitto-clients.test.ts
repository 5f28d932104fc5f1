import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConformanceServer, type ConformanceServer } from '../../src/conformance/conformance-server.js';
import { clientPool, collect, unique, waitFor } from '../helpers/test-broker.js';

interface Run {
  readonly process: ChildProcess;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  output(): string;
}

/** What a subscriber started with -d printed, without its debug lines. */
const messagesOf = (stdout: string): string[] => stdout.split('\n').filter((line) => line !== '' && !/^(Client |Subscribed )/.test(line));

/** Runs one of Debian's mosquitto-clients tools, collecting what it prints. */
function tool(name: 'mosquitto_pub' | 'mosquitto_sub', args: readonly string[]): Run {
  // Line-buffered, so a subscriber's debug lines (its SUBACK) arrive as they happen.
  const child = spawn('stdbuf', ['-oL', name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { process: child, done, output: () => stdout };
}

/**
 * Debian's mosquitto_pub and mosquitto_sub (libmosquitto 2.0) as third-party clients of the
 * conformance runner's engine, in both protocol versions.
 */
describe.concurrent('interoperability with mosquitto_pub and mosquitto_sub', () => {
  let server: ConformanceServer;
  let target: string[];

  beforeAll(async () => {
    server = await startConformanceServer({ port: 0, denySubscribe: ['test/nosubscribe'] });
    target = ['-h', '127.0.0.1', '-p', String(server.port)];
  });
  afterAll(() => server.close());

  /** Starts a subscriber (in debug mode) and waits until it has its SUBACK. */
  async function subscriber(args: readonly string[]): Promise<Run> {
    const run = tool('mosquitto_sub', [...target, '-d', ...args]);
    await waitFor(() => run.output().includes('received SUBACK'), 5000, 'the SUBACK');
    return run;
  }

  it.each(['mqttv311', 'mqttv5'])('%s: messages at QoS 0, 1 and 2 reach a subscriber at the QoS granted', async (version) => {
    const topic = unique(`mosquitto/${version}`);
    const sub = await subscriber(['-V', version, '-q', '2', '-C', '3', '-t', `${topic}/#`, '-F', '%t %q %p']);
    for (const qos of ['0', '1', '2']) {
      const pub = await tool('mosquitto_pub', [...target, '-V', version, '-q', qos, '-t', `${topic}/q${qos}`, '-m', `qos ${qos}`]).done;
      expect(pub.code).toBe(0);
    }
    const { code, stdout } = await sub.done;
    expect(code).toBe(0);
    expect(messagesOf(stdout).sort()).toEqual([`${topic}/q0 0 qos 0`, `${topic}/q1 1 qos 1`, `${topic}/q2 2 qos 2`]);
  });

  it('mqttv5: user properties, content type, response topic, correlation data and message expiry are forwarded', async () => {
    const topic = unique('mosquitto/properties');
    const sub = await subscriber(['-V', 'mqttv5', '-q', '1', '-C', '1', '-t', topic, '-F', '%C|%R|%D|%P|%E|%p']);
    const pub = await tool('mosquitto_pub', [
      ...target,
      '-V',
      'mqttv5',
      '-q',
      '1',
      '-t',
      topic,
      '-m',
      'body',
      '-D',
      'publish',
      'user-property',
      'trace',
      '42',
      '-D',
      'publish',
      'content-type',
      'text/plain',
      '-D',
      'publish',
      'response-topic',
      'replies/x',
      '-D',
      'publish',
      'correlation-data',
      'abc',
      '-D',
      'publish',
      'message-expiry-interval',
      '100',
    ]).done;
    expect(pub.code).toBe(0);
    const [contentType, responseTopic, correlationData, userProperties, expiry, payload] = (messagesOf((await sub.done).stdout)[0] as string).split('|');
    expect({ contentType, responseTopic, correlationData, userProperties, payload }).toEqual({
      contentType: 'text/plain',
      responseTopic: 'replies/x',
      correlationData: 'abc',
      userProperties: 'trace:42',
      payload: 'body',
    });
    expect(Number(expiry)).toBeGreaterThan(95);
    expect(Number(expiry)).toBeLessThanOrEqual(100);
  });

  it.each(['mqttv311', 'mqttv5'])('%s: retained messages are kept, and removed by an empty retained message', async (version) => {
    const topic = unique(`mosquitto/retained/${version}`);
    expect((await tool('mosquitto_pub', [...target, '-V', version, '-q', '1', '-r', '-t', topic, '-m', 'state']).done).code).toBe(0);
    const kept = await tool('mosquitto_sub', [...target, '-V', version, '-t', topic, '--retained-only', '-C', '1', '-W', '3', '-F', '%r %p']).done;
    expect(kept.stdout.trim()).toBe('1 state');
    expect((await tool('mosquitto_pub', [...target, '-V', version, '-q', '1', '-r', '-n', '-t', topic]).done).code).toBe(0);
    const gone = await tool('mosquitto_sub', [...target, '-V', version, '-t', topic, '--retained-only', '-W', '1']).done;
    expect(gone.stdout).toBe('');
  });

  it.for(['mqttv311', 'mqttv5'])('%s: a client killed without DISCONNECT has its will published', async (version, { onTestFinished }) => {
    const pool = clientPool(onTestFinished);
    const topic = unique(`mosquitto/will/${version}`);
    const watcher = await pool.connect(server.urls[0] as string, { protocolVersion: 5 });
    const received = collect(watcher);
    await watcher.subscribeAsync(topic, { qos: 1 });
    const doomed = await subscriber(['-V', version, '-t', unique('mosquitto/anything'), '--will-topic', topic, '--will-payload', 'gone', '--will-qos', '1']);
    doomed.process.kill('SIGKILL');
    await waitFor(() => received.length === 1);
    expect(received[0]).toMatchObject({ topic, payload: 'gone', qos: 1 });
  });

  it.each(['mqttv311', 'mqttv5'])('%s: a refused subscription is reported as denied', async (version) => {
    const run = await tool('mosquitto_sub', [...target, '-V', version, '-t', 'test/nosubscribe', '-W', '3']).done;
    expect(run.stderr).toMatch(/denied/i);
  });

  it('mqttv311 and mqttv5 clients exchange messages both ways', async () => {
    const topic = unique('mosquitto/mixed');
    const v311 = await subscriber(['-V', 'mqttv311', '-q', '1', '-C', '1', '-t', `${topic}/to311`]);
    const v5 = await subscriber(['-V', 'mqttv5', '-q', '1', '-C', '1', '-t', `${topic}/to5`]);
    await tool('mosquitto_pub', [...target, '-V', 'mqttv5', '-q', '1', '-t', `${topic}/to311`, '-m', 'from five', '-D', 'publish', 'user-property', 'a', 'b']).done;
    await tool('mosquitto_pub', [...target, '-V', 'mqttv311', '-q', '1', '-t', `${topic}/to5`, '-m', 'from three']).done;
    expect(messagesOf((await v311.done).stdout)).toEqual(['from five']);
    expect(messagesOf((await v5.done).stdout)).toEqual(['from three']);
  });
});
