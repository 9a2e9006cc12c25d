import { ERROR_CODES, healthOutput } from "@memory-exchange/shared";
import { z } from "zod";
import { camelToSnake, snakeCaseSchema, type JsonSchema } from "./case-mapping.js";
import type { RestOperation } from "./rest-operations.js";
import { REST_BASE } from "./route-table.js";

/** JSON objects of the OpenAPI document; the validator test, not these types, checks the shape. */
type Schema = JsonSchema;
type PathItem = Record<string, unknown>;
export type OpenApiPaths = Record<string, PathItem>;
export interface OpenApiDocument {
  openapi: "3.1.0";
  info: { title: string; version: string; description?: string };
  paths: OpenApiPaths;
  [field: string]: unknown;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/**
 * Payload fields are `z.custom`/`z.unknown` in the Zod schemas (validated by
 * code, not by shape), so JSON Schema cannot derive them: they are documented
 * here by hand. Their own keys are never renamed.
 */
const PAYLOAD_FIELDS: Record<string, JsonSchema> = {
  kvCacheData: ref("KvCacheDocument"),
  kvCacheSnapshot: ref("KvCacheDocument"),
  inputData: { type: "object", description: "Free-form JSON object for the chain; stored as sent." },
  inputExample: { description: "Any JSON value, returned exactly as published." },
  outputExample: { description: "Any JSON value, returned exactly as published." },
};

const SAFE = Number.MAX_SAFE_INTEGER;

/** Hand-written payload docs in place of `{}`, minus zod's ±MAX_SAFE_INTEGER bounds on every int. */
function documentPayloads(schema: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...schema };
  if (out.minimum === -SAFE) delete out.minimum;
  if (out.maximum === SAFE) delete out.maximum;
  if (schema.properties)
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([key, sub]) => [key, PAYLOAD_FIELDS[key] ?? documentPayloads(sub)]),
    );
  if (schema.items) out.items = documentPayloads(schema.items);
  for (const k of ["anyOf", "oneOf", "allOf"] as const) if (schema[k]) out[k] = schema[k].map(documentPayloads);
  return out;
}

const restSchema = (schema: JsonSchema) => snakeCaseSchema(documentPayloads(schema));

const TENSOR: Schema = {
  description:
    "A rectangular nested array of finite numbers (rank 1–4, e.g. [layers][heads][tokens][head_dim] or [tokens][dim]), or a compact encoding.",
  oneOf: [
    { type: "array", items: { anyOf: [{ type: "number" }, { type: "array" }] }, minItems: 1 },
    {
      type: "object",
      required: ["dtype", "shape", "data"],
      properties: {
        dtype: { type: "string", enum: ["float16", "bfloat16", "float32", "float64"] },
        shape: { type: "array", items: { type: "integer", minimum: 1 }, minItems: 1, maxItems: 4 },
        data: { type: "string", contentEncoding: "base64", description: "little-endian, row-major element bytes" },
      },
    },
  ],
};

const KV_CACHE_DOCUMENT: Schema = {
  type: "object",
  description:
    "A KV-cache snapshot. Its keys are the payload's own and are kept exactly as sent (camelCase `sourceModel`, any `metadata` keys); `keys` and `values` must have the same shape.",
  required: ["sourceModel", "keys", "values"],
  properties: {
    sourceModel: { type: "string", minLength: 1, maxLength: 50 },
    keys: ref("Tensor"),
    values: ref("Tensor"),
    metadata: { type: "object", description: "e.g. sequenceLength, tokenCount, contextDescription; stored as sent" },
  },
  additionalProperties: true,
  example: { sourceModel: "gpt-3.5-turbo", keys: [[0.1, 0.2]], values: [[0.3, 0.4]] },
};

const ERROR_ENVELOPE: Schema = {
  type: "object",
  required: ["success", "error", "code"],
  properties: {
    success: { type: "boolean", const: false },
    error: { type: "string", description: "human-readable message" },
    code: { type: "string", enum: [...ERROR_CODES] },
    details: {
      type: "array",
      description: "the invalid fields, with REST (snake_case) paths such as `price` or `kv_cache_data.keys[0]`",
      items: { type: "object", required: ["path", "message"], properties: { path: { type: "string" }, message: { type: "string" } } },
    },
    request_id: { type: "string" },
  },
};

const ERROR_RESPONSES: Record<number, [name: string, description: string]> = {
  400: ["InvalidInput", "Invalid input (`INVALID_INPUT`); `details` names each bad field"],
  401: ["Unauthenticated", "Missing, invalid, revoked or expired API key (`UNAUTHENTICATED`)"],
  403: ["Forbidden", "The key lacks the scope, or X-User-Id without an admin key (`FORBIDDEN`)"],
  404: ["NotFound", "Unknown id (`NOT_FOUND`)"],
  409: ["Conflict", "Conflicts with the current state, e.g. the listing is not for sale (`CONFLICT`, `IDEMPOTENCY_KEY_*`)"],
  413: ["PayloadTooLarge", "Body or payload over the configured limits (`PAYLOAD_TOO_LARGE`)"],
  415: ["UnsupportedMediaType", "The body is not application/json (`UNSUPPORTED_MEDIA_TYPE`)"],
  422: ["Unprocessable", "Well-formed but impossible, e.g. buying your own listing (`SELF_PURCHASE`, `UNPROCESSABLE`, `ALIGNMENT_TOO_LARGE`)"],
  429: ["RateLimited", "Too many requests (`RATE_LIMITED`); see Retry-After"],
  500: ["Internal", "Unexpected failure (`INTERNAL`); the request id is in the log"],
  503: ["Unavailable", "Database unavailable or service overloaded (`DATABASE_UNAVAILABLE`, `OVERLOADED`, `TIMEOUT`); see Retry-After"],
};

/** Errors any authenticated route can answer. */
const COMMON_ERRORS = [400, 401, 403, 429, 500, 503];

const envelope = (data: Schema): Schema => ({
  type: "object",
  required: ["success", "data"],
  properties: { success: { type: "boolean", const: true }, data },
});

const json = (schema: Schema) => ({ "application/json": { schema } });
const openApiPath = (path: string) => path.replace(/:(\w+)/g, "{$1}");

function operationObject(op: RestOperation): Record<string, unknown> {
  const { route, schemas } = op;
  const input = schemas.input ? restSchema(schemas.input) : undefined;
  const inputProps = (input?.properties ?? {}) as Record<string, Schema>;
  const required = new Set(input?.required ?? []);
  const parameters: Record<string, unknown>[] = [];

  if (route.input === "query") {
    for (const [name, schema] of Object.entries(inputProps))
      parameters.push({ name, in: "query", required: required.has(name), schema });
    for (const [alias, field] of Object.entries(route.aliases ?? {})) {
      const name = camelToSnake(field);
      parameters.push({ name: alias, in: "query", required: false, description: `Alias of \`${name}\``, schema: inputProps[name] ?? {} });
    }
  }
  for (const [param, field] of Object.entries(route.params ?? {})) {
    const name = camelToSnake(field);
    parameters.push({ name: param, in: "path", required: true, schema: inputProps[name] ?? { type: "integer" } });
  }
  parameters.push({ $ref: "#/components/parameters/XUserId" });

  const data = restSchema(schemas.output);
  if (route.message) {
    data.properties = { ...data.properties, message: { type: "string" } };
    data.required = [...(data.required ?? []), "message"];
  }

  const errors = [...new Set([...COMMON_ERRORS, ...(route.input === "body" ? [415] : []), ...(route.errors ?? [])])].sort((a, b) => a - b);
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.tag],
    "x-scope": op.scope,
    "x-trpc-procedure": route.procedure,
    parameters,
    ...(input && route.input === "body"
      ? { requestBody: { required: true, content: { "application/json": { schema: input, ...(route.example ? { example: route.example } : {}) } } } }
      : {}),
    responses: {
      [route.status]: { description: "Success", content: json(envelope(data)) },
      ...Object.fromEntries(errors.map((status) => [status, { $ref: `#/components/responses/${ERROR_RESPONSES[status]![0]}` }])),
    },
  };
}

function healthPath(): PathItem {
  const health = z.toJSONSchema(healthOutput) as JsonSchema;
  delete health.$schema;
  return {
    get: {
      operationId: "health",
      summary: "Liveness: plain fields for health checkers, plus the REST envelope",
      tags: ["health"],
      security: [],
      responses: {
        200: {
          description: "The service is up",
          content: json({
            type: "object",
            properties: { ...health.properties, success: { type: "boolean", const: true }, data: health },
            required: [...(health.required ?? []), "success", "data"],
          }),
        },
      },
    },
  };
}

/** Merges path items (method by method) into a document: routes other modules add by hand. */
export function addOpenApiPaths(document: OpenApiDocument, paths: OpenApiPaths): void {
  for (const [path, item] of Object.entries(paths)) document.paths[path] = { ...document.paths[path], ...item };
}

/** The OpenAPI 3.1 document of the REST API, generated from the route table and the procedures' Zod schemas. */
export function buildOpenApiDocument(operations: readonly RestOperation[], options: { version: string; extraPaths?: OpenApiPaths }): OpenApiDocument {
  const paths: OpenApiPaths = { "/health": healthPath() };
  for (const op of operations) {
    const path = openApiPath(REST_BASE + op.route.path);
    paths[path] = { ...paths[path], [op.route.method.toLowerCase()]: operationObject(op) };
  }
  const document: OpenApiDocument = {
    openapi: "3.1.0",
    info: {
      title: "Memory Exchange REST API",
      version: options.version,
      description:
        "Seed-compatible REST API: snake_case at the top level, `{success, data}` on success and `{success:false, error, code, details?}` on failure. " +
        "Payload objects (`kv_cache_data`, `kv_cache_snapshot`, `input_data`, examples) keep their own keys as sent. " +
        "Send the API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`. The same procedures are available, typed, over tRPC at `/trpc`.",
    },
    tags: [
      { name: "memory", description: "KV-cache memories: publish, buy, browse" },
      { name: "reasoning-chain", description: "Reasoning chains, paid per use" },
      { name: "stats", description: "Market statistics" },
      { name: "alignment", description: "Alignment matrices applied on purchase and use" },
      { name: "health", description: "Liveness" },
    ],
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: "http", scheme: "bearer", description: "An API key `mx_…` minted with `memory-exchange keys create`" },
        apiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key" },
      },
      parameters: {
        XUserId: {
          name: "X-User-Id",
          in: "header",
          required: false,
          description: "Admin keys only: act for this user of the main app",
          schema: { type: "integer", minimum: 1 },
        },
      },
      schemas: { ErrorEnvelope: ERROR_ENVELOPE, KvCacheDocument: KV_CACHE_DOCUMENT, Tensor: TENSOR },
      responses: Object.fromEntries(
        Object.values(ERROR_RESPONSES).map(([name, description]) => [name, { description, content: json(ref("ErrorEnvelope")) }]),
      ),
    },
  };
  if (options.extraPaths) addOpenApiPaths(document, options.extraPaths);
  return document;
}
