import type { FastifyTypeProvider } from 'fastify';

declare const staticType: unique symbol;

/**
 * A JSON Schema object that also carries, for the compiler only, the TypeScript type of the
 * values it accepts. Route schemas are written with the builders below; Fastify validates with
 * them at run time and types request and reply with them at compile time.
 */
export interface Schema<T> {
  readonly [keyword: string]: unknown;
  readonly [staticType]?: T;
}

export type Static<S> = S extends Schema<infer T> ? T : never;

type Options = Readonly<Record<string, unknown>>;
type Properties = Readonly<Record<string, Schema<unknown>>>;
type ObjectOf<R extends Properties, O extends Properties> = { [K in keyof R]: Static<R[K]> } & { [K in keyof O]?: Static<O[K]> };

function schema<T>(definition: Options): Schema<T> {
  return definition;
}

export const string = (options: Options = {}): Schema<string> => schema({ type: 'string', ...options });
export const integer = (options: Options = {}): Schema<number> => schema({ type: 'integer', ...options });
export const boolean = (options: Options = {}): Schema<boolean> => schema({ type: 'boolean', ...options });
export const literal = <const V extends string>(value: V): Schema<V> => schema({ const: value });
export const oneOf = <const V extends string>(values: readonly V[], options: Options = {}): Schema<V> => schema({ enum: values, ...options });
export const nullable = <T>(inner: Schema<T>): Schema<T | null> => schema({ anyOf: [inner, { type: 'null' }] });
export const array = <T>(items: Schema<T>, options: Options = {}): Schema<readonly T[]> => schema({ type: 'array', items, ...options });
export const record = <T>(values: Schema<T>, options: Options = {}): Schema<Readonly<Record<string, T>>> => schema({ type: 'object', additionalProperties: values, ...options });
export const unknown = (): Schema<unknown> => schema({});

/**
 * An object with `required` and `optional` properties. Unknown properties are refused unless
 * `open` is set (problem documents may carry extensions).
 */
export function object<R extends Properties, O extends Properties = Record<never, never>>(
  required: R,
  optional?: O,
  options: Options & { readonly open?: boolean } = {},
): Schema<ObjectOf<R, O>> {
  const { open = false, ...rest } = options;
  return schema({
    type: 'object',
    properties: { ...required, ...optional },
    required: Object.keys(required),
    additionalProperties: open,
    ...rest,
  });
}

/** Lets Fastify infer request and reply types from the route schemas above. */
export interface SchemaTypeProvider extends FastifyTypeProvider {
  readonly validator: this['schema'] extends Schema<infer T> ? T : unknown;
  readonly serializer: this['schema'] extends Schema<infer T> ? T : unknown;
}
