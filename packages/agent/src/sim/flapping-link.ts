import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP relay in front of the gateway that drops every connection through it every
 * `upMs` and refuses new ones for `downMs`: the faulty profile's intermittent network. TLS runs end
 * to end through it, so nothing about the session's security changes.
 */
export class FlappingLink {
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<Socket>();
  #server: Server | null = null;
  #timer: NodeJS.Timeout | null = null;
  #down = false;
  port = 0;

  constructor(target: { host: string; port: number }) {
    this.#target = target;
  }

  async start(upMs: number, downMs: number): Promise<this> {
    const server = createServer((client) => {
      if (this.#down) {
        client.destroy();
        return;
      }
      const upstream = createConnection(this.#target);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
    const cycle = (): void => {
      this.#timer = setTimeout(() => {
        this.#down = true;
        for (const socket of this.#sockets) socket.destroy();
        this.#timer = setTimeout(() => {
          this.#down = false;
          cycle();
        }, downMs);
      }, upMs);
    };
    cycle();
    return this;
  }

  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    for (const socket of this.#sockets) socket.destroy();
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
