/**
 * The floor for any Node MQTT broker over mutual TLS: a bare `tls.createServer` with the broker's
 * certificates (client certificate required) that answers every CONNECT with a CONNACK and does
 * nothing else. Plain JavaScript, run by `node` alone, so nothing but Node's TLS is measured.
 *
 * usage: node bench/broker/tls-floor.js CA CERT KEY  (prints `listening <port>` on 127.0.0.1)
 */
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:tls';
import process from 'node:process';

const [ca, cert, key] = process.argv.slice(2).map((file) => readFileSync(file));
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);

const server = createServer({ ca, cert, key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (socket) => {
  socket.setNoDelay(true);
  socket.on('data', (chunk) => {
    // A CONNECT (first byte 0x10) gets a CONNACK; anything else (DISCONNECT, PINGREQ) is ignored.
    if (chunk[0] === 0x10) socket.write(CONNACK);
  });
  socket.on('error', () => socket.destroy());
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.once('SIGTERM', () => process.exit(0));
