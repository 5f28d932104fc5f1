import { createServer, type Server } from 'node:https';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions, TLSSocket, TlsOptions } from 'node:tls';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { VerifiedCertificate } from '../identity/verified-certificate.js';
import type { SourceDecision } from './device-listener.js';

/** The path MQTT over WebSockets is served on, as most clients default to. */
export const WEBSOCKET_PATH = '/mqtt';
/** Largest WebSocket message accepted; MQTT packets above the engine's own limit are refused there. */
const MAX_FRAME_BYTES = 1_048_576;

export interface WebSocketListenerEvents {
  /** A device completed a mutual TLS handshake and the WebSocket upgrade: MQTT flows over `stream`. */
  onDevice(stream: Duplex, source: { readonly remoteAddress: string; readonly remotePort: number }, certificate: VerifiedCertificate): void;
  onHandshakeFailure(source: string, error: Error): void;
  admitSource(source: string): SourceDecision;
}

/**
 * MQTT over secure WebSockets (`wss://host:port/mqtt`, subprotocol `mqtt`), for devices and
 * browsers behind proxies that only pass HTTPS. Same TLS policy and same admission as the MQTT
 * listener: the client certificate is required in the TLS handshake, before any HTTP is read.
 */
export class WebSocketListener {
  readonly #https: Server;
  readonly #ws: WebSocketServer;

  constructor(tls: TlsOptions & SecureContextOptions, events: WebSocketListenerEvents) {
    this.#https = createServer({ ...tls, handshakeTimeout: 10_000 }, (_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' }).end('MQTT over WebSocket only\n');
    });
    this.#https.on('connection', (socket: { remoteAddress?: string; destroy(): void }) => {
      if (events.admitSource(socket.remoteAddress ?? '').action === 'refuse') socket.destroy();
    });
    this.#https.on('tlsClientError', (error: Error, socket: TLSSocket) => events.onHandshakeFailure(socket.remoteAddress ?? '', error));
    this.#ws = new WebSocketServer({
      server: this.#https,
      path: WEBSOCKET_PATH,
      maxPayload: MAX_FRAME_BYTES,
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
    });
    this.#ws.on('connection', (socket, request) => {
      const tls = request.socket as TLSSocket;
      const certificate = VerifiedCertificate.ofSocket(tls);
      // rejectUnauthorized makes this unreachable; kept so a configuration slip cannot admit an anonymous client.
      if (certificate === undefined) {
        socket.terminate();
        return;
      }
      events.onDevice(createWebSocketStream(socket), { remoteAddress: tls.remoteAddress ?? '', remotePort: tls.remotePort ?? 0 }, certificate);
    });
  }

  setTls(tls: TlsOptions & SecureContextOptions): void {
    this.#https.setSecureContext(tls);
  }

  setTicketKeys(keys: Buffer): void {
    this.#https.setTicketKeys(keys);
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#https.once('error', reject);
      this.#https.listen(port, host, () => {
        this.#https.off('error', reject);
        const address = this.#https.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  close(): Promise<void> {
    for (const client of this.#ws.clients) client.terminate();
    return new Promise((resolve) => {
      this.#ws.close(() => {
        if (!this.#https.listening) return resolve();
        this.#https.close(() => resolve());
      });
    });
  }
}
