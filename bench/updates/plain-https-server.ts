/**
 * The download baseline: one file served by a bare node:https server with the TLS settings every
 * Fleetward listener uses (serverTlsOptions: same suites, groups, TLS floor, client certificates
 * asked for and verified), and nothing else: no Fleetward, no fastify, no authorization. Forked
 * with IPC by bench/updates/download.ts: `plain-https-server.ts FILE CERTS_JSON`; sends `{ ready, port }`.
 * The file is streamed with createReadStream's defaults, as a plain server would.
 */
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serverTlsOptions } from '../../packages/server/src/gateway/tls-policy.js';

const [file, certsFile] = process.argv.slice(2);
if (file === undefined || certsFile === undefined) throw new Error('usage: plain-https-server.ts FILE CERTS_JSON');
const certs = JSON.parse(readFileSync(certsFile, 'utf8')) as { certPem: string; keyPem: string; caPem: string };
const size = statSync(file).size;
const server = createServer(serverTlsOptions({ certPem: certs.certPem, keyPem: certs.keyPem }, 'TLSv1.2', { mode: 'optional', ca: certs.caPem }), (_request, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  createReadStream(file).pipe(res);
});
server.listen(0, '127.0.0.1', () => process.send?.({ ready: true, port: (server.address() as AddressInfo).port }));
process.on('disconnect', () => server.close());
