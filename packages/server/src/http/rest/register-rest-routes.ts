import fastifyCors from "@fastify/cors";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { DomainError } from "../../errors.js";
import type { Principal } from "../../domain/api-keys.js";
import { authorize, reportFailure, type Context, type Services } from "../../trpc/trpc.js";
import { ok, sendError } from "../envelope.js";
import { requestContext } from "../request-context.js";
import { ResponseCache } from "../response-cache.js";
import { uncachedStore } from "../../store/read-cache.js";
import { restDetails } from "./case-mapping.js";
import { registerDocs } from "./docs.js";
import { buildOpenApiDocument, type OpenApiDocument, type OpenApiPaths } from "./openapi.js";
import { restOperations, type RestOperation } from "./rest-operations.js";
import { REST_BASE } from "./route-table.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The served OpenAPI document; `addOpenApiPaths(app.openApiDocument, …)` documents routes added elsewhere. */
    openApiDocument: OpenApiDocument;
  }
}

export interface RestApiOptions {
  services: Services;
  /** `MEMORY_EXCHANGE_CORS_ORIGINS`: empty = CORS off, `*` = any origin */
  corsOrigins: string[];
  /** hand-written path items for routes registered outside the route table */
  extraOpenApiPaths?: OpenApiPaths;
  /** TTL of rendered responses of cacheable routes (`MEMORY_EXCHANGE_READ_CACHE_TTL_MS`); 0 = off */
  responseCacheTtlMs?: number;
}

const JSON_TYPE = "application/json; charset=utf-8";


/** Validation paths in the REST spelling (`kv_cache_data.keys[0]`), message rebuilt to match. */
function restError(error: DomainError, op: RestOperation): DomainError {
  if (!error.details) return error;
  const details = restDetails(error.details, op.input.restName);
  if (details.every((d, i) => d.path === error.details![i]!.path)) return error;
  const message =
    error.code === "INVALID_INPUT" ? `Invalid input: ${details.map((d) => `${d.path}: ${d.message}`).join("; ")}` : error.message;
  return new DomainError(error.code, message, details, error.retryAfter);
}

function handlerFor(op: RestOperation, services: Services, responseCacheTtlMs: number) {
  const { route, scope, procedure } = op;
  const readInput: (request: FastifyRequest) => unknown = {
    body: (request: FastifyRequest) => op.input.fromBody(request.body ?? {}),
    query: (request: FastifyRequest) => op.input.fromQuery(request.query as Record<string, unknown>),
    path: (request: FastifyRequest) => op.input.fromQuery(request.params as Record<string, unknown>),
    none: () => undefined,
  }[route.input];

  const render = async (request: FastifyRequest, ctx: Context, principal: Principal) => {
    const output = (await procedure.run(ctx, principal, readInput(request))) as Record<string, unknown>;
    const data = op.toRest(output) as Record<string, unknown>;
    if (route.message) data.message = route.message(output);
    return ok(data);
  };
  const fail = (reply: FastifyReply, ctx: Context, error: unknown) => sendError(reply, restError(reportFailure(ctx, route.procedure, error), op));

  // The tier's rule runs first on every request, also when the answer comes from the cache.
  const cache = procedure.cache ? new ResponseCache(services.store, responseCacheTtlMs) : undefined;
  const groups = procedure.cache ? [procedure.cache] : [];
  // A miss renders from the database, not from the store's read cache: nothing served is older than one TTL.
  const renderServices: Services = { ...services, store: uncachedStore(services.store) };
  if (cache?.enabled)
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const ctx = requestContext(renderServices, request);
      try {
        const principal = await authorize(ctx, scope);
        const { status, body } =
          cache.get(request.url) ??
          (await cache.render(request.url, groups, async () => ({ status: route.status, body: JSON.stringify(await render(request, ctx, principal)) })));
        return reply.code(status).type(JSON_TYPE).send(body);
      } catch (error) {
        return fail(reply, ctx, error);
      }
    };

  return async (request: FastifyRequest, reply: FastifyReply) => {
    const ctx = requestContext(services, request);
    try {
      return reply.code(route.status).send(await render(request, ctx, await authorize(ctx, scope)));
    } catch (error) {
      return fail(reply, ctx, error);
    }
  };
}

/**
 * The seed-compatible REST API: every route of the route table at `/api/v1`,
 * each calling its tRPC procedure directly (`directProcedure`), plus CORS,
 * `/openapi.json` and `/docs`.
 *
 * Each route also answers without the `/api/v1` prefix: the seed's proxy
 * snippet (`app.use('/api/memory-exchange', createProxyMiddleware({pathRewrite:
 * {'^/api/memory-exchange': '/api/v1'}}))`) forwards `/memory/publish` with
 * http-proxy-middleware 3, which strips the mount path before rewriting.
 */
export async function registerRestApi(app: FastifyInstance, options: RestApiOptions): Promise<void> {
  const { services, corsOrigins } = options;
  if (corsOrigins.length > 0)
    await app.register(fastifyCors, {
      origin: corsOrigins.includes("*") ? "*" : corsOrigins,
      exposedHeaders: ["x-request-id", "retry-after"],
      maxAge: 600,
    });

  const operations = restOperations();
  for (const op of operations) {
    const handler = handlerFor(op, services, options.responseCacheTtlMs ?? 0);
    app.route({ method: op.route.method, url: REST_BASE + op.route.path, handler });
    app.route({ method: op.route.method, url: op.route.path, handler });
  }

  const document = buildOpenApiDocument(operations, { version: services.version, extraPaths: options.extraOpenApiPaths });
  app.decorate("openApiDocument", document);
  await registerDocs(app, document);
}
