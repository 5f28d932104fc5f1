/**
 * The gateway benchmark's device load generator: many devices, each with its own certificate and
 * client id (its thing name), over mutual TLS 1.3 with MQTT 3.1.1. It runs in its own process
 * (forked with IPC by bench/gateway/processes.ts: `device-load.ts DEVICES_JSON CA_PEM`) so that
 * the broker's CPU, read from /proc/<pid>/stat like bench/broker/loadgen.c does, is the broker's
 * alone. The C load generator presents one certificate and generated client ids, which the
 * gateway rightly refuses (a client id is bound to the certificate's thing): hence this one.
 *
 * Requests (one at a time), each answered with one object:
 *   connect  N connects, C at a time, each by the next device: TLS, CONNECT, CONNACK, DISCONNECT;
 *            with `resume`, TLS resumes with the device's last ticket from that broker.
 *   pubsub   an observer subscribed to `things/+/telemetry`, P devices publishing to their own
 *            `things/<name>/telemetry`, each with at most `window` messages not yet delivered.
 *   hold     opens and keeps connections (retrying with backoff, like a device, until admitted),
 *            each from one of `sources` loopback addresses; closes are timed, and with
 *            `reconnect` a closed connection comes back as a device's would.
 *   closes   when each held connection was closed by the broker (process.hrtime, ns).
 *   settle   waits until every held device is connected again (or a deadline).
 *   release  closes every held connection.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { brokerCpuSeconds } from './proc-stat.js';
import { connectPacket, DISCONNECT, PacketSplitter, publishPacket, pubackPacket, subscribePacket } from './mqtt-bytes.js';

interface Device {
  readonly name: string;
  readonly keyPem: string;
  readonly certPem: string;
}

export type LoadRequest =
  /** With `resume`, each device offers the TLS session ticket its last connection to `port` received. */
  | { readonly cmd: 'connect'; readonly port: number; readonly pid: number; readonly from: number; readonly count: number; readonly concurrency: number; readonly resume?: boolean }
  | {
      readonly cmd: 'pubsub';
      readonly port: number;
      readonly pid: number;
      readonly observer: number;
      readonly from: number;
      readonly publishers: number;
      readonly qos: 0 | 1;
      readonly window: number;
      readonly payload: number;
      /** What every publish carries (a JSON document, say) instead of `payload` bytes of "x". */
      readonly body?: string;
      readonly warmupSeconds: number;
      readonly seconds: number;
    }
  | { readonly cmd: 'hold'; readonly port: number; readonly from: number; readonly count: number; readonly concurrency: number; readonly sources: number; readonly timeoutMs: number }
  | { readonly cmd: 'reconnect'; readonly port: number; readonly jitterMs: number }
  | { readonly cmd: 'closes' }
  | { readonly cmd: 'settle'; readonly timeoutMs: number }
  | { readonly cmd: 'release' };

const [devicesFile, caFile] = process.argv.slice(2);
if (devicesFile === undefined || caFile === undefined) throw new Error('usage: device-load.ts DEVICES_JSON CA_PEM');
const devices = JSON.parse(readFileSync(devicesFile, 'utf8')) as Device[];
const ca = readFileSync(caFile, 'utf8');
const contexts: (SecureContext | undefined)[] = [];
const HOST = '127.0.0.1';
const CONNECT_TIMEOUT_MS = 10_000;
/** Backoff of a refused device: full jitter over min(cap, base · 2^attempt) (AWS IoT SDK defaults, halved). */
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 16_000;

function secureContext(index: number): SecureContext {
  let context = contexts[index];
  if (context === undefined) {
    const device = devices[index];
    if (device === undefined) throw new RangeError(`no device ${index} (there are ${devices.length})`);
    context = createSecureContext({ key: device.keyPem, cert: device.certPem, ca, minVersion: 'TLSv1.3' });
    contexts[index] = context;
  }
  return context;
}

type Attempt = { readonly ok: true; readonly socket: TLSSocket; readonly splitter: PacketSplitter } | { readonly ok: false; readonly why: string };

/** The last TLS session ticket each device received from each broker (`port:index`). */
const tickets = new Map<string, Buffer>();

/** One connection attempt of one device, up to its CONNACK; a refusal's why is `connack-<code>` or the socket error. */
function attempt(index: number, port: number, localAddress?: string, keepAlive = 0, resume = false): Promise<Attempt> {
  return new Promise((resolve) => {
    const device = devices[index] as Device;
    const key = `${port}:${index}`;
    const session = resume ? tickets.get(key) : undefined;
    const socket = tlsConnect({ host: HOST, port, secureContext: secureContext(index), ...(session !== undefined && { session }), ...(localAddress !== undefined && { localAddress }) });
    socket.on('session', (ticket: Buffer) => tickets.set(key, ticket));
    let settled = false;
    const finish = (result: Attempt): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!result.ok) socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, why: 'timeout' }), CONNECT_TIMEOUT_MS);
    const splitter = new PacketSplitter((firstByte, body) => {
      if (settled || firstByte >> 4 !== 2) return;
      const code = body[1] ?? 255;
      finish(code === 0 ? { ok: true, socket, splitter } : { ok: false, why: `connack-${code}` });
    });
    socket.on('data', (chunk: Buffer) => splitter.push(chunk));
    socket.once('secureConnect', () => socket.write(connectPacket(device.name, keepAlive)));
    socket.on('error', (error: NodeJS.ErrnoException) => finish({ ok: false, why: error.code ?? error.message }));
    socket.once('close', () => finish({ ok: false, why: 'closed' }));
  });
}

function goodbye(socket: TLSSocket): void {
  if (!socket.destroyed) socket.end(DISCONNECT);
}

/** Runs `task(i)` for i in [0, count), at most `concurrency` at a time. */
async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

async function connectStorm(request: Extract<LoadRequest, { cmd: 'connect' }>) {
  const errors = new Map<string, number>();
  const cpu0 = brokerCpuSeconds(request.pid);
  const started = process.hrtime.bigint();
  let connections = 0;
  let resumed = 0;
  await pool(request.count, request.concurrency, async (i) => {
    const result = await attempt(request.from + i, request.port, undefined, 0, request.resume === true);
    if (result.ok) {
      connections += 1;
      if (result.socket.isSessionReused()) resumed += 1;
      goodbye(result.socket);
    } else errors.set(result.why, (errors.get(result.why) ?? 0) + 1);
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // The broker's side of the last closes: let it finish them inside the window (as loadgen.c does).
  await sleep(300);
  return { connections, resumed, seconds, brokerCpuSeconds: brokerCpuSeconds(request.pid) - cpu0, errors: Object.fromEntries(errors) };
}

async function pubsub(request: Extract<LoadRequest, { cmd: 'pubsub' }>) {
  const { qos, window } = request;
  const observed = await attempt(request.observer, request.port);
  if (!observed.ok) throw new Error(`the observer was refused: ${observed.why}`);
  const observer = observed.socket;
  const publishers: { socket: TLSSocket; sent: number; delivered: number; nextId: number; template: { bytes: Buffer; idOffset: number } }[] = [];
  const byTopic = new Map<string, number>();
  let subscribed: (granted: number) => void = () => undefined;
  const suback = new Promise<number>((resolve) => (subscribed = resolve));
  let delivered = 0;
  const refill = (index: number): void => {
    const publisher = publishers[index];
    if (publisher === undefined) return;
    const outstanding = publisher.sent - publisher.delivered;
    if (outstanding > window / 2) return;
    const count = window - outstanding;
    const { bytes, idOffset } = publisher.template;
    const batch = Buffer.allocUnsafe(bytes.length * count);
    for (let n = 0; n < count; n += 1) {
      bytes.copy(batch, n * bytes.length);
      if (qos === 1) {
        publisher.nextId = publisher.nextId === 65_535 ? 1 : publisher.nextId + 1;
        batch.writeUInt16BE(publisher.nextId, n * bytes.length + idOffset);
      }
    }
    publisher.sent += count;
    publisher.socket.write(batch);
  };
  // Deliveries: counted per publisher (by topic), acknowledged in one write per chunk, windows refilled.
  const acks: Buffer[] = [];
  const touched = new Set<number>();
  const observerPackets = new Map<number, number>();
  const observerSplitter = new PacketSplitter((firstByte, body) => {
    const type = firstByte >> 4;
    observerPackets.set(type, (observerPackets.get(type) ?? 0) + 1);
    if (type === 9) return subscribed(body[2] ?? 0x80);
    if (type !== 3) return;
    const topicLength = body.readUInt16BE(0);
    const topic = body.toString('latin1', 2, 2 + topicLength);
    if (((firstByte >> 1) & 3) === 1) acks.push(pubackPacket(body.readUInt16BE(2 + topicLength)));
    const index = byTopic.get(topic);
    if (index === undefined) return;
    (publishers[index] as { delivered: number }).delivered += 1;
    delivered += 1;
    touched.add(index);
  });
  observer.removeAllListeners('data');
  observer.on('data', (chunk: Buffer) => {
    observerSplitter.push(chunk);
    if (acks.length > 0) observer.write(Buffer.concat(acks.splice(0)));
    for (const index of touched) refill(index);
    touched.clear();
  });
  observer.write(subscribePacket('things/+/telemetry', qos));
  const granted = await suback;
  if (granted >= 0x80) throw new Error('the observer was not allowed to subscribe to things/+/telemetry');
  const payload = request.body === undefined ? Buffer.alloc(request.payload, 'x') : Buffer.from(request.body);
  await pool(request.publishers, 16, async (i) => {
    const index = request.from + i;
    const result = await attempt(index, request.port);
    if (!result.ok) throw new Error(`publisher ${devices[index]?.name ?? index} was refused: ${result.why}`);
    result.socket.removeAllListeners('data');
    // PUBACKs from the broker are read and dropped (reading keeps the broker's writes flowing).
    result.socket.on('data', () => undefined);
    const topic = `things/${(devices[index] as Device).name}/telemetry`;
    byTopic.set(topic, i);
    publishers[i] = { socket: result.socket, sent: 0, delivered: 0, nextId: 0, template: publishPacket(topic, qos, payload) };
  });
  for (let i = 0; i < publishers.length; i += 1) refill(i);
  await sleep(request.warmupSeconds * 1000);
  const publisherState = { destroyed: publishers.filter((p) => p.socket.destroyed).length, bytesWritten: publishers.reduce((t, p) => t + p.socket.bytesWritten, 0), sent: publishers.reduce((t, p) => t + p.sent, 0) };
  const cpu0 = brokerCpuSeconds(request.pid);
  const delivered0 = delivered;
  const started = process.hrtime.bigint();
  await sleep(request.seconds * 1000);
  const cpu1 = brokerCpuSeconds(request.pid);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const measured = delivered - delivered0;
  for (const publisher of publishers) goodbye(publisher.socket);
  goodbye(observer);
  await sleep(200);
  return { publisherState, observerPackets: Object.fromEntries(observerPackets), delivered: measured, seconds, brokerCpuSeconds: cpu1 - cpu0, messagesPerSecond: measured / seconds, perMessageBrokerUs: ((cpu1 - cpu0) * 1e6) / measured };
}

/** Held connections by device index: the live socket, when the broker closed it, whether it is back. */
interface Held {
  socket: TLSSocket | null;
  readonly localAddress: string;
  closedNs: bigint | null;
  attempts: number;
}

const held = new Map<number, Held>();
let reconnectPort: number | null = null;
let reconnectJitterMs = 0;
const refusals = new Map<string, number>();
let lastAdmittedNs = 0n;
let releasing = false;

/** Loopback source k of n: 127.1.x.y, each a different source to the gateway's per-source handshake limit. */
function sourceAddress(k: number): string {
  return `127.1.${Math.floor(k / 250)}.${(k % 250) + 1}`;
}

/** Connects a held device, retrying with backoff until admitted or the deadline; true when admitted. */
async function admit(index: number, entry: Held, port: number, deadline: number): Promise<boolean> {
  for (let tries = 0; Date.now() < deadline && !releasing; tries += 1) {
    entry.attempts += 1;
    const result = await attempt(index, port, entry.localAddress);
    if (result.ok) {
      entry.socket = result.socket;
      lastAdmittedNs = process.hrtime.bigint();
      result.socket.once('close', () => onHeldClose(index, entry));
      return true;
    }
    refusals.set(result.why, (refusals.get(result.why) ?? 0) + 1);
    await sleep(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** tries));
  }
  return false;
}

function onHeldClose(index: number, entry: Held): void {
  entry.socket = null;
  entry.closedNs ??= process.hrtime.bigint();
  if (reconnectPort === null || releasing) return;
  const port = reconnectPort;
  setTimeout(() => void admit(index, entry, port, Date.now() + 600_000), Math.random() * reconnectJitterMs);
}

async function hold(request: Extract<LoadRequest, { cmd: 'hold' }>) {
  releasing = false;
  reconnectPort = null;
  refusals.clear();
  const started = process.hrtime.bigint();
  const deadline = Date.now() + request.timeoutMs;
  let connected = 0;
  await pool(request.count, request.concurrency, async (i) => {
    const index = request.from + i;
    const entry: Held = { socket: null, localAddress: sourceAddress(i % request.sources), closedNs: null, attempts: 0 };
    held.set(index, entry);
    if (await admit(index, entry, request.port, deadline)) connected += 1;
  });
  return { connected, seconds: Number(process.hrtime.bigint() - started) / 1e9, refusals: Object.fromEntries(refusals) };
}

async function settle(timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const down = (): number => [...held.values()].filter((entry) => entry.socket === null).length;
  while (down() > 0 && Date.now() < deadline) await sleep(100);
  const attempts = [...held.values()].map((entry) => entry.attempts);
  return { down: down(), lastAdmittedNs: String(lastAdmittedNs), maxAttempts: Math.max(0, ...attempts), refusals: Object.fromEntries(refusals) };
}

async function release() {
  releasing = true;
  reconnectPort = null;
  for (const entry of held.values()) if (entry.socket !== null) goodbye(entry.socket);
  held.clear();
  await sleep(500);
  return { released: true };
}

async function answer(request: LoadRequest): Promise<unknown> {
  switch (request.cmd) {
    case 'connect':
      return connectStorm(request);
    case 'pubsub':
      return pubsub(request);
    case 'hold':
      return hold(request);
    case 'reconnect':
      reconnectPort = request.port;
      reconnectJitterMs = request.jitterMs;
      refusals.clear();
      return { armed: true };
    case 'closes':
      return { closes: Object.fromEntries([...held].filter(([, e]) => e.closedNs !== null).map(([index, e]) => [index, String(e.closedNs)])) };
    case 'settle':
      return settle(request.timeoutMs);
    case 'release':
      return release();
  }
}

// Contexts are made before any measurement: parsing keys is the load generator's cost, not the broker's.
for (let i = 0; i < devices.length; i += 1) secureContext(i);
process.on('message', (message: { id: number; request: LoadRequest }) => {
  answer(message.request).then(
    (result) => process.send?.({ id: message.id, result }),
    (error: unknown) => process.send?.({ id: message.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.send?.({ ready: true });
