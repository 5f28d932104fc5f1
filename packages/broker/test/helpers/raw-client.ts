import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { generate, parser, type Packet } from 'mqtt-packet';

/**
 * A bare socket speaking MQTT bytes: for protocol violations no client library would send, and
 * for watching exactly what the broker answers.
 */
export class RawClient {
  readonly socket: Socket;
  readonly packets: Packet[] = [];
  readonly closed: Promise<void>;
  #version: 4 | 5;
  #isClosed = false;
  readonly #parser = parser();

  private constructor(socket: Socket, version: 4 | 5) {
    this.socket = socket;
    this.#version = version;
    this.#parser.on('packet', (packet: Packet) => this.packets.push(packet));
    this.#parser.on('error', () => undefined);
    // The parser learns the protocol version from a CONNECT it decodes; a client only decodes
    // server packets, so it is told the version this way.
    this.#parser.parse(generate({ cmd: 'connect', clientId: 'x', protocolVersion: version, protocolId: 'MQTT', clean: true, keepalive: 0 }, { protocolVersion: version }));
    this.packets.length = 0;
    socket.on('data', (chunk: Buffer) => this.#parser.parse(chunk));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.#isClosed = true;
        resolve();
      }),
    );
  }

  static async open(port: number, version: 4 | 5 = 4): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new RawClient(socket, version);
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  send(packet: Packet): void {
    this.socket.write(generate(packet, { protocolVersion: this.#version }));
  }

  write(bytes: Buffer | readonly number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** Sends CONNECT and waits for CONNACK. */
  async connect(options: Partial<Extract<Packet, { cmd: 'connect' }>> = {}): Promise<Extract<Packet, { cmd: 'connack' }>> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.#version, clientId: `raw-${process.pid}-${Math.random().toString(36).slice(2)}`, clean: true, keepalive: 0, ...options });
    return (await this.next('connack')) as Extract<Packet, { cmd: 'connack' }>;
  }

  /** The next packet of a type (earlier ones of other types are skipped), within the timeout. */
  async next(cmd?: Packet['cmd'], timeoutMs = 3000): Promise<Packet> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.packets.findIndex((packet) => cmd === undefined || packet.cmd === cmd);
      if (index >= 0) return this.packets.splice(index, 1)[0] as Packet;
      if (Date.now() > deadline) throw new Error(`no ${cmd ?? 'packet'} within ${timeoutMs} ms (got ${this.packets.map((p) => p.cmd).join(', ') || 'nothing'})`);
      if (this.#isClosed) throw new Error(`connection closed before a ${cmd ?? 'packet'} arrived`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Resolves true if the broker closes the connection within the timeout. */
  async closesWithin(timeoutMs = 3000): Promise<boolean> {
    const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs));
    return Promise.race([this.closed.then(() => true as const), timeout]);
  }

  end(): void {
    this.socket.destroy();
  }
}
