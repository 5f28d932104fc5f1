import type { Api } from '../types.js';
import { problem, PROBLEM_CONTENT_TYPE, type Problem } from '../problem.js';
import { boolean, literal, object, record, string } from '../json-schema.js';
import { Problem as ProblemSchema } from '../schemas.js';

export interface ReadinessCheck {
  readonly ok: boolean;
  readonly detail: string;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, ReadinessCheck>>;
}

const Checks = record(object({ ok: boolean(), detail: string() }));

/** Liveness (the process answers) and readiness (it can serve: database reachable, CA loaded). */
export function healthRoutes(app: Api, deps: { readonly readiness: () => Promise<Readiness> }): void {
  app.get(
    '/healthz',
    { config: { access: { kind: 'public' } }, schema: { tags: ['health'], response: { 200: object({ status: literal('ok') }) } } },
    () => ({ status: 'ok' as const }),
  );
  app.get(
    '/readyz',
    {
      config: { access: { kind: 'public' } },
      schema: { tags: ['health'], response: { 200: object({ status: literal('ready'), checks: Checks }), 503: ProblemSchema } },
    },
    async (request, reply) => {
      const readiness = await deps.readiness();
      if (readiness.ready) return { status: 'ready' as const, checks: readiness.checks };
      const failing = Object.entries(readiness.checks).filter(([, check]) => !check.ok);
      const body: Problem = problem('FW_ERR_NOT_READY', failing.map(([name, check]) => `${name}: ${check.detail}`).join('; '), request.url, { checks: readiness.checks });
      return reply.code(503).type(PROBLEM_CONTENT_TYPE).send(body);
    },
  );
}
