import type { ErrorDetail } from "@memory-exchange/shared";
import { toIsoString } from "./iso-time.js";

/**
 * snake_case ⇄ camelCase for the REST edge, compiled once per route from the
 * JSON Schema of the procedure's own Zod schemas. Only keys that the schema
 * declares as object properties are renamed; payload fields (`kvCacheData`,
 * `inputData`, examples…) are `z.custom`/`z.unknown`, have no properties in
 * their schema, and therefore pass through with their own keys untouched.
 */
export type JsonSchema = {
  type?: string | string[];
  format?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  [keyword: string]: unknown;
};

export const camelToSnake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export const snakeToCamel = (key: string) => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

type Convert = (value: unknown) => unknown;

const leaf: Convert = (value) => (value instanceof Date ? toIsoString(value) : value);

const variants = (schema: JsonSchema) => [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])];

/** Every property any object variant of `schema` declares (unions merge: alignment has two shapes). */
function objectProperties(schema: JsonSchema): Map<string, JsonSchema> {
  const merged = new Map<string, JsonSchema>();
  const visit = (s: JsonSchema) => {
    for (const [key, sub] of Object.entries(s.properties ?? {})) if (!merged.has(key)) merged.set(key, sub);
    for (const v of variants(s)) visit(v);
  };
  visit(schema);
  return merged;
}

function arrayItems(schema: JsonSchema): JsonSchema | undefined {
  if (schema.items) return schema.items;
  for (const v of variants(schema)) {
    const items = arrayItems(v);
    if (items) return items;
  }
  return undefined;
}

/** A value JSON carries as is: a string, number, integer or boolean field that is not a date. */
function isPlainScalar(schema: JsonSchema): boolean {
  const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
  const scalar = (s: JsonSchema, type: string | undefined) =>
    type === "string" ? s.format !== "date-time" : type === "number" || type === "integer" || type === "boolean" || type === "null";
  if (types.length > 0) return !schema.properties && !schema.items && types.every((t) => scalar(schema, t));
  const union = variants(schema);
  return union.length > 0 && union.every((v) => isPlainScalar(v));
}

type Field = { key: string; name: string; convert: Convert | undefined };

/**
 * The converter of a closed object, generated as one object literal: every
 * output object of a schema gets the same shape, and each read and store is
 * monomorphic. The loop it replaces (read `value[key]`, store `out[name]`
 * for each field) made both megamorphic: ~7 % of an uncached REST browse's
 * CPU. Names and keys come from the procedures' own schemas and are quoted
 * with JSON.stringify; an undefined field stays undefined, which JSON omits.
 */
function compileClosedObject(fields: Field[]): (value: Record<string, unknown>) => Record<string, unknown> {
  if (fields.some((f) => f.name === "__proto__")) throw new Error("an output field named __proto__ cannot be converted");
  const converters = fields.map((f) => f.convert);
  const entries = fields.map(({ key, name, convert }, i) => {
    const read = `value[${JSON.stringify(key)}]`;
    return `${JSON.stringify(name)}: ${convert ? `(v = ${read}) === undefined ? undefined : c[${i}](v)` : read}`;
  });
  const build = new Function("c", `return function convertClosed(value) { let v; return { ${entries.join(", ")} }; };`) as (
    c: (Convert | undefined)[],
  ) => (value: Record<string, unknown>) => Record<string, unknown>;
  return build(converters);
}

/** The converter of an open object (a union's merged members): its own keys enumerated, declared ones renamed. */
function compileOpenObject(fields: Field[]): (value: Record<string, unknown>) => Record<string, unknown> {
  const byKey = new Map(fields.map((field) => [field.key, field]));
  return (value) => {
    const out: Record<string, unknown> = {};
    for (const key in value) {
      const field = byKey.get(key);
      const v = value[key];
      if (v === undefined) continue;
      if (!field) out[key] = v;
      else out[field.name] = field.convert ? field.convert(v) : v;
    }
    return out;
  };
}

/** A function turning a procedure output (camelCase, Dates) into its REST form (snake_case, ISO strings). */
export function compileOutputConverter(schema: JsonSchema): Convert {
  const properties = objectProperties(schema);
  const items = arrayItems(schema);
  if (properties.size === 0 && !items) return leaf;

  // A field copied as is has no converter: most of a page's fields, which then cost one load and one store.
  const fields: Field[] = [...properties].map(([key, sub]) => ({ key, name: camelToSnake(key), convert: isPlainScalar(sub) ? undefined : compileOutputConverter(sub) }));
  const convertItem = items ? compileOutputConverter(items) : leaf;
  // A closed object (every output object Zod declares: `additionalProperties: false`) holds only its
  // declared keys once the output is validated: they are read by name, not enumerated.
  const closed = schema.additionalProperties === false && variants(schema).length === 0;
  const convertObject = closed ? compileClosedObject(fields) : compileOpenObject(fields);

  return (value) => {
    if (Array.isArray(value)) return items ? value.map(convertItem) : value;
    if (value === null || typeof value !== "object" || value instanceof Date) return leaf(value);
    return convertObject(value as Record<string, unknown>);
  };
}

/** Renames the properties of a JSON Schema to snake_case, recursively through objects, arrays and unions. */
export function snakeCaseSchema(schema: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...schema };
  if (schema.properties) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([key, sub]) => [camelToSnake(key), snakeCaseSchema(sub)]),
    );
    if (schema.required) out.required = schema.required.map(camelToSnake);
  }
  if (schema.items) out.items = snakeCaseSchema(schema.items);
  for (const k of ["anyOf", "oneOf", "allOf"] as const) if (schema[k]) out[k] = schema[k].map(snakeCaseSchema);
  return out;
}

type Coerce = (raw: unknown) => unknown;

const NUMBER = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const toNumber: Coerce = (raw) => (typeof raw === "string" && NUMBER.test(raw) ? Number(raw) : raw);
const toBoolean: Coerce = (raw) => (raw === "true" || raw === "1" ? true : raw === "false" || raw === "0" ? false : raw);
const asIs: Coerce = (raw) => raw;

function typesOf(schema: JsonSchema): Set<string> {
  const types = new Set<string>();
  const visit = (s: JsonSchema) => {
    if (typeof s.type === "string") types.add(s.type);
    else if (Array.isArray(s.type)) for (const t of s.type) types.add(t);
    for (const v of variants(s)) visit(v);
  };
  visit(schema);
  return types;
}

/** Query strings carry text: numbers and booleans are coerced as the input schema types them; anything else is left for Zod to reject. */
function queryCoercion(schema: JsonSchema): Coerce {
  const types = typesOf(schema);
  if (types.has("string")) return asIs;
  if (types.has("number") || types.has("integer")) return toNumber;
  if (types.has("boolean")) return toBoolean;
  return asIs;
}

export interface InputMapper {
  /** The procedure input built from a JSON body (top-level keys renamed, payloads untouched). */
  fromBody(body: unknown): unknown;
  /** The procedure input built from a query string (known keys only, coerced to the schema's types). */
  fromQuery(query: Record<string, unknown>): Record<string, unknown>;
  /** The REST name of a top-level procedure field (for error paths). */
  restName(field: string): string;
}

/**
 * Maps REST input (snake_case; camelCase accepted too) onto a procedure's
 * input object. `aliases` adds extra REST names for a field (`chain_type` → `category`).
 */
export function compileInputMapper(
  schema: JsonSchema | undefined,
  options: { aliases?: Record<string, string>; restNames?: Record<string, string> } = {},
): InputMapper {
  type Entry = { field: string; coerce: Coerce };
  // Spellings by precedence, lowest first: aliases, camelCase, snake_case (the REST name wins when a client sends both).
  const snake = new Map<string, Entry>();
  const camel = new Map<string, Entry>();
  const byField = new Map<string, Entry>();
  const restNames = new Map<string, string>();
  for (const [field, sub] of Object.entries(schema?.properties ?? {})) {
    const entry = { field, coerce: queryCoercion(sub) };
    byField.set(field, entry);
    snake.set(camelToSnake(field), entry);
    if (camelToSnake(field) !== field) camel.set(field, entry);
    restNames.set(field, options.restNames?.[field] ?? camelToSnake(field));
  }
  const aliases = new Map<string, Entry>();
  for (const [alias, field] of Object.entries(options.aliases ?? {})) {
    const entry = byField.get(field);
    if (entry) aliases.set(alias, entry);
  }
  const spellings = [aliases, camel, snake];

  return {
    fromBody(body) {
      if (body === null || typeof body !== "object" || Array.isArray(body)) return body;
      const source = body as Record<string, unknown>;
      // Unknown keys go through as sent: the procedure's schema strips or rejects them.
      const input: Record<string, unknown> = {};
      for (const key of Object.keys(source)) if (!spellings.some((map) => map.has(key))) input[key] = source[key];
      for (const map of spellings)
        for (const [key, entry] of map) if (Object.hasOwn(source, key)) input[entry.field] = source[key];
      return input;
    },
    fromQuery(query) {
      const input: Record<string, unknown> = {};
      for (const map of spellings)
        for (const [key, entry] of map) if (query[key] !== undefined) input[entry.field] = entry.coerce(query[key]);
      return input;
    },
    restName: (field) => restNames.get(field) ?? field,
  };
}

/** `kvCacheData.keys.0.1` → `kv_cache_data.keys[0][1]`: the top-level field in its REST name, payload keys as sent. */
export function restPath(path: string, restName: (field: string) => string): string {
  if (path === "(input)") return path;
  const [first = "", ...rest] = path.split(".");
  let out = restName(first);
  for (const segment of rest) out += /^\d+$/.test(segment) ? `[${segment}]` : `.${segment}`;
  return out;
}

export function restDetails(details: ErrorDetail[], restName: (field: string) => string): ErrorDetail[] {
  return details.map((d) => ({ path: restPath(d.path, restName), message: d.message }));
}
