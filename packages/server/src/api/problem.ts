import type { FastifyError, FastifyReply } from 'fastify';
import { errorCodes, FleetwardError, type ErrorCode } from '@fleetward/protocol';
import { isStoreUnavailable } from '../store/store.js';

/** An RFC 9457 problem document with Fleetward's stable `code`. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: string;
  readonly instance?: string;
  readonly [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_VALIDATION: 'FW_ERR_VALIDATION',
  FST_ERR_CTP_BODY_TOO_LARGE: 'FW_ERR_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'FW_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'FW_ERR_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'FW_ERR_BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'FW_ERR_BAD_REQUEST',
};

/**
 * Maps any error to the problem it is for the caller. Only FleetwardErrors and request-shape
 * errors say what went wrong; anything unexpected becomes FW_ERR_INTERNAL with no detail, so
 * internals never leak.
 */
export function toProblem(error: unknown, instance?: string): Problem {
  if (error instanceof FleetwardError) return problem(error.code, error.message, instance, error.details);
  if (isStoreUnavailable(error)) return problem('FW_ERR_STORE_UNAVAILABLE', 'the database is unavailable; try again later', instance);
  const fastifyError = error as Partial<FastifyError> | null;
  if (fastifyError?.validation) {
    const errors = fastifyError.validation.map((v) => ({ path: `${fastifyError.validationContext ?? 'body'}${v.instancePath}`, message: describeValidation(v) }));
    return problem('FW_ERR_VALIDATION', errors.map((e) => `${e.path}: ${e.message}`).join('; '), instance, { errors });
  }
  const mapped = typeof fastifyError?.code === 'string' ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped) return problem(mapped, fastifyError?.message ?? errorCodes[mapped].title, instance);
  if (error instanceof SyntaxError || (typeof fastifyError?.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500)) {
    return problem('FW_ERR_BAD_REQUEST', fastifyError?.message ?? 'malformed request', instance);
  }
  return problem('FW_ERR_INTERNAL', 'the request failed unexpectedly; the node log has the details', instance);
}

export function problem(code: ErrorCode, detail: string, instance?: string, extensions: Readonly<Record<string, unknown>> = {}): Problem {
  const spec = errorCodes[code];
  return { ...extensions, type: `urn:fleetward:problem:${code}`, title: spec.title, status: spec.http, code, detail, ...(instance ? { instance } : {}) };
}

export async function sendProblem(reply: FastifyReply, body: Problem): Promise<FastifyReply> {
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

function describeValidation(v: { keyword: string; message?: string; params: Record<string, unknown> }): string {
  if (v.keyword === 'additionalProperties') return `unknown field ${JSON.stringify(v.params.additionalProperty)}`;
  return v.message ?? v.keyword;
}
