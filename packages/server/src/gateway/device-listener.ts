import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { createServer, type SecureContextOptions, type Server, type TLSSocket, type TlsOptions } from 'node:tls';
import { VerifiedCertificate } from '../identity/verified-certificate.js';

/** What to do with a new TCP connection, before any TLS work is spent on it. */
export type SourceDecision = { readonly action: 'accept' } | { readonly action: 'delay'; readonly delayMs: number } | { readonly action: 'refuse' };

export interface DeviceListenerEvents {
  /** A device completed a mutual TLS handshake: its certificate chains to a trusted CA. */
  onDevice(socket: TLSSocket, certificate: VerifiedCertificate): void;
  /** A handshake failed: no certificate, an untrusted or expired one, a TLS version or suite we refuse. */
  onHandshakeFailure(source: string, error: Error): void;
  /** Asked for every TCP connection before its handshake: a handshake flood is refused or slowed here. */
  admitSource(source: string): SourceDecision;
}

/** A handshake not finished by then is dropped (node's own default is two minutes: too long to hold a slot). */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * The devices' MQTT-over-TLS listener: TLS 1.2+ with AEAD suites, and a client certificate
 * chaining to a CA Fleetward trusts for devices is required to complete the handshake. TCP is
 * accepted first and each connection asked of `admitSource` before it reaches TLS, so a flood of
 * handshakes costs no signature work. Which CAs devices chain to changes (issuing CA rotation,
 * third-party CA registration) and the session ticket keys rotate: `setTls` and `setTicketKeys`
 * swap them in without dropping live connections. The TLS settings come from `deviceTlsOptions`.
 */
export class DeviceListener {
  readonly #tcp: TcpServer;
  readonly #tls: Server;
  readonly #events: DeviceListenerEvents;
  readonly #waiting = new Set<Socket>();

  constructor(tls: TlsOptions & SecureContextOptions, events: DeviceListenerEvents) {
    this.#events = events;
    this.#tls = createServer({ ...tls, handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
    this.#tls.on('secureConnection', (socket: TLSSocket) => {
      const certificate = VerifiedCertificate.ofSocket(socket);
      // rejectUnauthorized makes this unreachable; kept so a configuration slip cannot admit an anonymous client.
      if (certificate === undefined) {
        socket.destroy();
        return;
      }
      events.onDevice(socket, certificate);
    });
    this.#tls.on('tlsClientError', (error: Error, socket: TLSSocket) => events.onHandshakeFailure(socket.remoteAddress ?? '', error));
    this.#tcp = createTcpServer((socket) => this.#accept(socket));
  }

  setTls(tls: TlsOptions & SecureContextOptions): void {
    this.#tls.setSecureContext(tls);
  }

  setTicketKeys(keys: Buffer): void {
    this.#tls.setTicketKeys(keys);
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#tcp.once('error', reject);
      this.#tcp.listen(port, host, () => {
        this.#tcp.off('error', reject);
        const address = this.#tcp.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  /** Stops accepting and drops connections still waiting for their handshake; live ones are the broker's to close. */
  close(): Promise<void> {
    for (const socket of this.#waiting) socket.destroy();
    return new Promise((resolve) => {
      if (!this.#tcp.listening) return resolve();
      this.#tcp.close(() => resolve());
    });
  }

  #accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    const decision = this.#events.admitSource(socket.remoteAddress ?? '');
    if (decision.action === 'refuse') {
      socket.destroy();
      return;
    }
    if (decision.action === 'accept') {
      this.#tls.emit('connection', socket);
      return;
    }
    // Held, not refused: a legitimate device in a reconnect storm gets through a little later.
    this.#waiting.add(socket);
    const timer = setTimeout(() => {
      this.#waiting.delete(socket);
      if (!socket.destroyed) this.#tls.emit('connection', socket);
    }, decision.delayMs);
    socket.once('close', () => {
      clearTimeout(timer);
      this.#waiting.delete(socket);
    });
  }
}
