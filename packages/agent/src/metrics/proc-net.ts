import type { Transport } from '@fleetward/protocol';

/**
 * Parsers of the kernel's socket and interface tables (/proc/net/{tcp,tcp6,udp,udp6,dev}): text in,
 * data out, no I/O. A line that does not parse is skipped, never fatal: a metrics report with one
 * socket missing is better than none.
 */

/** The byte order the kernel printed addresses in: the host's (`os.endianness()`). */
export type Endianness = 'LE' | 'BE';

export interface ProcSocket {
  readonly protocol: Transport;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The kernel's TCP state number (include/net/tcp_states.h), also used for UDP. */
  readonly state: number;
}

export interface InterfaceCounters {
  readonly name: string;
  readonly bytesIn: number;
  readonly packetsIn: number;
  readonly bytesOut: number;
  readonly packetsOut: number;
}

// include/net/tcp_states.h
const TCP_ESTABLISHED = 0x01;
const TCP_CLOSE = 0x07;
const TCP_LISTEN = 0x0a;

const ENDPOINT = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/;

/** Rows of /proc/net/tcp, tcp6, udp or udp6 (the header line and malformed lines are skipped). */
export function parseProcNetSockets(text: string, protocol: Transport, endianness: Endianness = 'LE'): ProcSocket[] {
  const sockets: ProcSocket[] = [];
  for (const line of text.split('\n')) {
    // "sl local_address rem_address st ...": the header's second column is not an endpoint, so it fails the match.
    const [slot, local, remote, state] = line.trim().split(/\s+/);
    const localEndpoint = slot?.endsWith(':') ? parseEndpoint(local, endianness) : null;
    const remoteEndpoint = parseEndpoint(remote, endianness);
    if (!localEndpoint || !remoteEndpoint || state === undefined || !/^[0-9A-Fa-f]{2}$/.test(state)) continue;
    sockets.push({ protocol, localAddress: localEndpoint.address, localPort: localEndpoint.port, remoteAddress: remoteEndpoint.address, remotePort: remoteEndpoint.port, state: parseInt(state, 16) });
  }
  return sockets;
}

/** TCP in LISTEN; UDP bound and not connected (the kernel shows it as CLOSE with no remote end). */
export function isListening(socket: ProcSocket): boolean {
  if (socket.protocol === 'tcp') return socket.state === TCP_LISTEN;
  return socket.state === TCP_CLOSE && socket.remotePort === 0 && isUnspecified(socket.remoteAddress) && socket.localPort !== 0;
}

export function isEstablished(socket: ProcSocket): boolean {
  return socket.protocol === 'tcp' && socket.state === TCP_ESTABLISHED;
}

/** Rows of /proc/net/dev: per-interface counters since the interface came up. */
export function parseProcNetDev(text: string): InterfaceCounters[] {
  const interfaces: InterfaceCounters[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    // Receive: bytes packets errs drop fifo frame compressed multicast; Transmit: bytes packets ...
    const fields = line.slice(colon + 1).trim().split(/\s+/);
    if (name === '' || fields.length < 16 || !fields.every((f) => /^\d+$/.test(f))) continue;
    const [bytesIn, packetsIn] = [counter(fields[0]), counter(fields[1])];
    const [bytesOut, packetsOut] = [counter(fields[8]), counter(fields[9])];
    interfaces.push({ name, bytesIn, packetsIn, bytesOut, packetsOut });
  }
  return interfaces;
}

/** Traffic over the device's real interfaces: loopback is the device talking to itself. */
export function externalTraffic(interfaces: readonly InterfaceCounters[]): Omit<InterfaceCounters, 'name'> {
  const sum = (pick: (i: InterfaceCounters) => number) => Math.min(Number.MAX_SAFE_INTEGER, interfaces.filter((i) => i.name !== 'lo').reduce((total, i) => total + pick(i), 0));
  return { bytesIn: sum((i) => i.bytesIn), packetsIn: sum((i) => i.packetsIn), bytesOut: sum((i) => i.bytesOut), packetsOut: sum((i) => i.packetsOut) };
}

function parseEndpoint(text: string | undefined, endianness: Endianness): { address: string; port: number } | null {
  const match = text === undefined ? null : ENDPOINT.exec(text);
  if (!match) return null;
  const bytes = addressBytes(match[1] as string, endianness);
  return { address: bytes.length === 4 ? formatIPv4(bytes) : formatIPv6(bytes), port: parseInt(match[2] as string, 16) };
}

/**
 * The kernel prints an address as 32-bit words with `%08X` of the in-memory (network order) value,
 * so on a little-endian host each word's bytes come out reversed.
 */
function addressBytes(hex: string, endianness: Endianness): number[] {
  const bytes: number[] = [];
  for (let word = 0; word < hex.length; word += 8) {
    const wordBytes = [0, 2, 4, 6].map((i) => parseInt(hex.slice(word + i, word + i + 2), 16));
    bytes.push(...(endianness === 'LE' ? wordBytes.reverse() : wordBytes));
  }
  return bytes;
}

function formatIPv4(bytes: readonly number[]): string {
  return bytes.join('.');
}

/** RFC 5952 text: lower case, no leading zeros, the first longest run of two or more zero groups as `::`; v4-mapped as plain IPv4. */
function formatIPv6(bytes: readonly number[]): string {
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return formatIPv4(bytes.slice(12));
  const groups = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ((bytes[2 * i] as number) << 8) | (bytes[2 * i + 1] as number));
  let [bestStart, bestLength] = [-1, 1];
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > bestLength) [bestStart, bestLength] = [start, length];
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

function counter(field: string | undefined): number {
  return Math.min(Number.MAX_SAFE_INTEGER, Number(field));
}
