import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

/**
 * Request validation. Bodies are checked exactly: no type coercion, and unknown fields are
 * refused rather than silently dropped (fastify's defaults do both). Query strings and path
 * parameters arrive as text, so there numbers and booleans are converted before checking.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const common: Options = { allErrors: false, removeAdditional: false, useDefaults: true, strict: true };
  const body = new Ajv({ ...common, coerceTypes: false });
  // 'array': a query parameter given once still fits a schema that allows it several times.
  const text = new Ajv({ ...common, coerceTypes: 'array' });
  addFormats.default(body);
  addFormats.default(text);
  return ({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema as object);
}
