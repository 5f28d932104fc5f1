import type { Actor } from '../../audit/audit-events.js';
import type { CaSummary } from '../../identity/ca-repository.js';
import type { IssuingRotation } from '../../identity/ca-rotation.js';
import type { Api } from '../types.js';
import { array, boolean, integer, object, oneOf, string } from '../json-schema.js';
import { authenticatedErrors, Problem, Timestamp } from '../schemas.js';
import { actorOf } from './operators.js';

const CaInfo = object({
  id: string(),
  role: oneOf(['root', 'issuing', 'external'] as const),
  status: oneOf(['active', 'retired'] as const),
  subject: string(),
  serial: string(),
  keyAlgorithm: string(),
  notBefore: Timestamp,
  notAfter: Timestamp,
  keyOnline: boolean(),
  pem: string(),
});

/** The CA hierarchy: anyone with fleet:read sees it; rotating the issuing CA is for admins (ca:write). */
export function caRoutes(app: Api, deps: { readonly caSummaries: () => Promise<CaSummary[]>; readonly rotateIssuingCa: (actor: Actor, options: { requestRotation: boolean }) => Promise<IssuingRotation> }): void {
  const tags = ['certificate authorities'];
  app.get('/api/v1/cas', { config: { access: { kind: 'permission', permission: 'fleet:read' } }, schema: { tags, response: { 200: object({ cas: array(CaInfo) }), ...authenticatedErrors } } }, async () => ({ cas: await deps.caSummaries() }));
  app.post(
    '/api/v1/cas/rotate-issuing',
    {
      config: { access: { kind: 'permission', permission: 'ca:write' } },
      schema: {
        tags,
        description: 'Creates a new issuing CA signed by the root; the previous one is retired but stays trusted while its certificates are in use. requestRotation marks its device certificates "must rotate".',
        body: object({}, { requestRotation: boolean() }),
        response: { 200: object({ previous: string(), current: string(), rotationRequested: integer() }), 409: Problem, ...authenticatedErrors },
      },
    },
    async (request) => deps.rotateIssuingCa(actorOf(request), { requestRotation: request.body.requestRotation === true }),
  );
}
