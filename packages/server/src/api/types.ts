import type { Server } from 'node:https';
import type { FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression } from 'fastify';
import type { Logger } from '../observability/logger.js';
import type { SchemaTypeProvider } from './json-schema.js';

/** The operator API: Fastify over HTTPS, with route types inferred from the route schemas. */
export type Api = FastifyInstance<Server, RawRequestDefaultExpression<Server>, RawReplyDefaultExpression<Server>, Logger, SchemaTypeProvider>;
