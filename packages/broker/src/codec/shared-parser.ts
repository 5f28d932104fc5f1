import { parser as createParser, type Packet, type Parser } from 'mqtt-packet';

/**
 * One mqtt-packet parser for every connection of the process. mqtt-packet's parser is a stream
 * decoder (an event emitter over a buffer-list stream, about a kilobyte and a stream's set-up per
 * instance), but a frame is always one whole packet, decoded synchronously: so the protocol version
 * is set before each frame, and a parser left with an error or with bytes it did not consume is
 * thrown away for a fresh one.
 */
let current: Parser | undefined;
let decoded: Packet | undefined;
let failed = false;

/** Before the CONNECT the version is unknown; the CONNECT itself tells mqtt-packet which one it is. */
const settingsByVersion = { none: {}, 4: { protocolVersion: 4 }, 5: { protocolVersion: 5 } } as const;

/** Decodes one complete packet with mqtt-packet; undefined when it refuses it. */
export function parseFrame(bytes: Buffer, version: 4 | 5 | undefined): Packet | undefined {
  const parser = (current ??= newParser());
  // The parser keeps the CONNECT as its settings after one: every frame gets the version it belongs to.
  (parser as unknown as { settings: object }).settings = settingsByVersion[version ?? 'none'];
  decoded = undefined;
  failed = false;
  const left = parser.parse(bytes);
  const packet = decoded;
  decoded = undefined;
  if (failed || left !== 0 || packet === undefined) {
    current = undefined;
    return undefined;
  }
  return packet;
}

function newParser(): Parser {
  const parser = createParser();
  parser.on('packet', (packet: Packet) => {
    decoded = packet;
  });
  parser.on('error', () => {
    failed = true;
  });
  return parser;
}
