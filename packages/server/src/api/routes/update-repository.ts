import type { FastifyReply } from 'fastify';
import { FleetwardError } from '@fleetward/protocol';
import type { NodeMetrics } from '../../observability/metrics.js';
import type { UpdateServices } from '../../updates/update-services.js';
import { requestedRange } from '../../updates/update-downloads.js';
import { verifiedClientCertificate } from '../device-certificate.js';
import { object, string } from '../json-schema.js';
import type { Api } from '../types.js';

const DEVICE = { access: { kind: 'device' } } as const;
const tags = ['updates'];
const File = object({ file: string({ minLength: 1, maxLength: 330, pattern: '^[A-Za-z0-9._-]+$' }) });

/**
 * What devices download updates from (rule 4): TUF metadata and target files, over the API's
 * HTTPS with the device certificate. Targets support HTTP Range, so an interrupted download resumes.
 */
export function updateRepositoryRoutes(app: Api, deps: { readonly updates: UpdateServices; readonly metrics: NodeMetrics }): void {
  const { downloads, repository, blobs } = deps.updates;

  app.get('/updates/v1/metadata/:file', { config: DEVICE, schema: { tags, params: File } }, async (request, reply) => {
    await downloads.device(verifiedClientCertificate(request), request.ip);
    const body = await repository.metadataFile(request.params.file);
    if (body === null) {
      deps.metrics.updateDownloads.inc({ what: 'metadata', outcome: 'not-found' });
      // TUF clients look for the next root until there is none: a plain 404 ends that search.
      throw new FleetwardError('FW_ERR_NOT_FOUND', `no metadata ${request.params.file}`);
    }
    deps.metrics.updateDownloads.inc({ what: 'metadata', outcome: 'served' });
    return reply.type('application/json').send(body);
  });

  app.get('/updates/v1/targets/:file', { config: DEVICE, schema: { tags, params: File } }, async (request, reply) => {
    const device = await downloads.device(verifiedClientCertificate(request), request.ip);
    const target = await downloads.target(device, request.params.file, request.ip);
    const range = requestedRange(request.headers.range, target.length);
    void reply.header('accept-ranges', 'bytes').header('etag', `"${target.sha256}"`).type('application/octet-stream');
    if (range === 'unsatisfiable') {
      deps.metrics.updateDownloads.inc({ what: 'artifact', outcome: 'unsatisfiable' });
      return reply.code(416).header('content-range', `bytes */${target.length}`).send();
    }
    // A resumed download of a changed file would mix two files: If-Range protects against that.
    const ifRange = request.headers['if-range'];
    const partial = range !== null && (ifRange === undefined || ifRange === `"${target.sha256}"`);
    deps.metrics.updateDownloads.inc({ what: 'artifact', outcome: partial ? 'partial' : 'served' });
    return partial ? sendRange(reply, blobs.read(target.sha256, range), range, target.length) : reply.header('content-length', target.length).send(blobs.read(target.sha256));
  });
}

function sendRange(reply: FastifyReply, stream: NodeJS.ReadableStream, range: { start: number; end: number }, size: number): FastifyReply {
  return reply
    .code(206)
    .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
    .header('content-length', range.end - range.start + 1)
    .send(stream);
}
