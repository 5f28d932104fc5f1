import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { connect, connectAsync, type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { createBroker, type Broker, type BrokerHooks, type BrokerOptions } from '@fleetward/broker';

export interface TestBroker<C = undefined> {
  readonly broker: Broker<C>;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Hooks that allow everything: what the conformance runner uses, for protocol tests. */
export function allowAll(): BrokerHooks<undefined> {
  return {
    admit: () => ({ admit: true, context: undefined }),
    authorizePublish: () => true,
    authorizeSubscribe: () => true,
    authorizeDelivery: () => true,
  };
}

/** A broker behind a loopback TCP listener on a free port; sweeps timers every 50 ms. */
export async function startBroker<C = undefined>(options: BrokerOptions = {}, hooks?: BrokerHooks<C>): Promise<TestBroker<C>> {
  const broker = createBroker<C>({ sweepIntervalMs: 50, ...options }, hooks ?? (allowAll() as unknown as BrokerHooks<C>));
  const server: Server = createServer((socket) => broker.handle(socket, { transport: 'tcp', remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    broker,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      await broker.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly qos: number;
  readonly retain: boolean;
  readonly dup: boolean;
  readonly properties: Record<string, unknown> | undefined;
}

/** Records every message a client receives. */
export function collect(client: MqttClient): Received[] {
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    received.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, dup: packet.dup, properties: packet.properties });
  });
  return received;
}

/** MQTT.js clients opened by tests, closed together when the test (or file) is done with them. */
export class ClientPool {
  readonly #clients = new Set<MqttClient>();

  /** An MQTT.js client that never reconnects by itself. */
  async connect(url: string, options: IClientOptions = {}): Promise<MqttClient> {
    const client = await connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    client.on('error', () => undefined);
    this.#clients.add(client);
    return client;
  }

  /**
   * A client whose messages are recorded from the very first one: a resumed session's messages can
   * arrive in the same chunk as CONNACK, before `connectAsync` would let a listener be added.
   */
  async connectCollecting(url: string, options: IClientOptions = {}): Promise<{ client: MqttClient; received: Received[]; connack: IConnackPacket }> {
    const client = connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    this.#clients.add(client);
    const received = collect(client);
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
      client.once('close', () => reject(new Error('closed before CONNACK')));
    });
    client.on('error', () => undefined);
    return { client, received, connack };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#clients].map((client) => client.endAsync(true).catch(() => undefined)));
    this.#clients.clear();
  }
}

const shared = new ClientPool();

/** For tests that run one at a time: clients from a shared pool, closed by `closeClients()` after each. */
export const connectClient = (url: string, options?: IClientOptions): Promise<MqttClient> => shared.connect(url, options);
export const connectCollecting = (url: string, options?: IClientOptions): ReturnType<ClientPool['connectCollecting']> => shared.connectCollecting(url, options);
export const closeClients = (): Promise<void> => shared.close();

/** For concurrent tests: a pool of their own, closed when the test finishes. */
export function clientPool(onTestFinished: (listener: () => Promise<void>) => void): ClientPool {
  const pool = new ClientPool();
  onTestFinished(() => pool.close());
  return pool;
}

/** Resolves with the DISCONNECT the broker sends a client, or rejects when none comes in time. */
export function disconnectOf(client: MqttClient, timeoutMs = 5000): Promise<{ reasonCode?: number; properties?: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no DISCONNECT from the broker')), timeoutMs);
    client.once('disconnect', (packet) => {
      clearTimeout(timer);
      resolve(packet);
    });
  });
}

export async function waitFor(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let counter = 0;
/** A client id or topic prefix unique in this test run. */
export function unique(prefix: string): string {
  counter++;
  return `${prefix}-${process.pid}-${counter}`;
}
