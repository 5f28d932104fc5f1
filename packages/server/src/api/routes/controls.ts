import type { Canaries } from '../../health/canaries.js';
import { CONTROLS } from '../../health/controls.js';
import type { Api } from '../types.js';
import { array, boolean, integer, nullable, object, oneOf, string } from '../json-schema.js';
import { authenticatedErrors } from '../schemas.js';

const tags = ['health'];

const ControlResultSchema = object({
  control: oneOf(CONTROLS),
  status: oneOf(['held', 'not-held', 'error', 'not-applicable'] as const),
  checkedAt: string({ format: 'date-time' }),
  durationMs: integer(),
  detail: string(),
  since: string({ format: 'date-time', description: 'Since when the control has had this status' }),
});

const ControlsReportSchema = object({
  held: boolean({ description: 'True when no control is not-held or error' }),
  checkedAt: nullable(string({ format: 'date-time' })),
  controls: array(ControlResultSchema),
});

/**
 * Rule 6: what the canaries found when they last attacked this node's own controls, and running
 * them now. Reading needs `fleet:read`; running (it connects canary devices and is audited when a
 * control changes) needs `fleet:write`.
 */
export function controlsRoutes(app: Api, deps: { readonly canaries: Pick<Canaries, 'report' | 'run'> }): void {
  app.get(
    '/api/v1/health/controls',
    {
      config: { access: { kind: 'permission', permission: 'fleet:read' } },
      schema: { tags, description: 'The last canary report: each security control, held or not, when last checked.', response: { 200: ControlsReportSchema, ...authenticatedErrors } },
    },
    () => deps.canaries.report(),
  );

  app.post(
    '/api/v1/health/controls/run',
    {
      config: { access: { kind: 'permission', permission: 'fleet:write' } },
      schema: { tags, description: 'Runs every canary now against this node and returns the report (a run in progress is joined).', response: { 200: ControlsReportSchema, ...authenticatedErrors } },
    },
    () => deps.canaries.run(),
  );
}
