import type { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { ReasonCode } from '@fleetward/protocol';
import type { Broker } from '../broker.js';
import type { BrokerLimits } from '../broker-options.js';
import { createBroker } from '../create-broker.js';
import type { BrokerHooks, ConnectionInfo } from '../hooks/broker-hooks.js';

export interface ConformanceServerOptions {
  readonly port: number;
  readonly denySubscribe: readonly string[];
  readonly tls?: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer };
  readonly ipv6?: boolean;
}

export interface ConformanceServer {
  readonly port: number;
  readonly urls: readonly string[];
  readonly broker: Broker<undefined>;
  close(): Promise<void>;
}

/**
 * Limits for independent test suites: the defaults, except Keep Alive bounds that let suites use
 * short keep alives (1 s) and that answer a Keep Alive of 120 with a Server Keep Alive of 60, as
 * the Eclipse Paho MQTT 5 interoperability suite expects.
 */
export const conformanceLimits: Partial<BrokerLimits> = { minKeepAliveSeconds: 1, maxKeepAliveSeconds: 60 };

/** Timers are swept four times a second, so keep alive and will delay tests see sub-second precision. */
const SWEEP_INTERVAL_MS = 250;

/** Hooks that allow everything except the named subscriptions, for loopback clients only. */
export function allowAllHooks(denySubscribe: readonly string[]): BrokerHooks<undefined> {
  const denied = new Set(denySubscribe);
  return {
    admit: (connect, connection) =>
      isLoopback(connection.remoteAddress)
        ? { admit: true, context: undefined, responseInformation: `responses/${connect.assignedClientId ?? connect.clientId}` }
        : { admit: false, reasonCode: ReasonCode.NotAuthorized },
    authorizePublish: () => true,
    // 0x80 (3.1.1: Failure) is what the Paho suites expect for their "nosubscribe" filter.
    authorizeSubscribe: (_client, subscription) => (denied.has(subscription.filter) ? { reasonCode: ReasonCode.UnspecifiedError } : true),
    authorizeDelivery: () => true,
  };
}

/** Serves the bare engine on loopback only: plain TCP, or mutual TLS when certificates are given. */
export async function startConformanceServer(options: ConformanceServerOptions): Promise<ConformanceServer> {
  const broker = createBroker({ limits: conformanceLimits, sweepIntervalMs: SWEEP_INTERVAL_MS }, allowAllHooks(options.denySubscribe));
  const tls = options.tls;
  const accept = (socket: Socket | TLSSocket, transport: string): void => {
    const remoteAddress = socket.remoteAddress;
    // Only loopback clients: the runner is a test fixture, never a service.
    if (!isLoopback(remoteAddress)) {
      socket.destroy();
      return;
    }
    const remotePort = socket.remotePort ?? 0;
    broker.handle(socket, transport === 'tls' ? new TlsConnectionInfo(socket as TLSSocket, remoteAddress ?? '', remotePort) : { transport, remoteAddress: remoteAddress ?? '', remotePort });
  };
  const makeServer = (): Server =>
    tls === undefined
      ? createTcpServer((socket) => accept(socket, 'tcp'))
      : createTlsServer({ ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (socket) =>
          accept(socket, 'tls'),
        );
  const servers: Server[] = [];
  const listen = async (host: string, port: number): Promise<number> => {
    const server = makeServer();
    servers.push(server);
    server.listen(port, host);
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  };
  const port = await listen('127.0.0.1', options.port);
  const scheme = tls === undefined ? 'mqtt' : 'mqtts';
  const urls = [`${scheme}://127.0.0.1:${port}`];
  if (options.ipv6 === true) {
    await listen('::1', port);
    urls.push(`${scheme}://[::1]:${port}`);
  }
  return {
    port,
    urls,
    broker,
    close: async () => {
      for (const server of servers) server.close();
      await broker.close();
    },
  };
}

/**
 * A TLS connection's info, with the verified client certificate decoded when a hook first asks for
 * it: the allow-all hooks never do, and decoding an X509Certificate for every connection cost more
 * CPU than all of the MQTT handling of a connect (measured by `npm run bench -- broker`). A class,
 * not a closure, so that an idle connection carries one small object.
 */
class TlsConnectionInfo implements ConnectionInfo {
  readonly transport = 'tls';
  readonly remoteAddress: string;
  readonly remotePort: number;
  #socket: TLSSocket | undefined;
  #peerCertificate: X509Certificate | undefined;

  constructor(socket: TLSSocket, remoteAddress: string, remotePort: number) {
    this.#socket = socket;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
  }

  get peerCertificate(): X509Certificate | undefined {
    if (this.#socket !== undefined) {
      this.#peerCertificate = this.#socket.getPeerX509Certificate();
      this.#socket = undefined;
    }
    return this.#peerCertificate;
  }
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const ipv4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return ipv4.startsWith('127.') || address === '::1';
}
