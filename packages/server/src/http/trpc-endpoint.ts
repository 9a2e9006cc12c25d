import { fastifyTRPCPlugin, type FastifyTRPCPluginOptions } from "@trpc/server/adapters/fastify";
import { TRPC_ERROR_CODES_BY_KEY } from "@trpc/server/rpc";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Scope } from "@memory-exchange/shared";
import { uncachedStore, type ReadCacheGroup } from "../store/read-cache.js";
import { directCall, directProcedure, isProcedurePath, procedureParts, type DirectCall } from "../trpc/direct-call.js";
import { appRouter, type AppRouter } from "../trpc/root.js";
import { authorize, reportFailure, toTRPCError, trpcErrorShape, type Context, type Services } from "../trpc/trpc.js";
import { wireTransformer } from "../trpc/wire-transformer.js";
import { requestContext } from "./request-context.js";
import { ResponseCache, type RenderedResponse } from "./response-cache.js";

export const TRPC_PREFIX = "/trpc";

interface BatchedQuery {
  call: DirectCall;
  /** the tier's scope and the read-cache group of the procedure (ProcedureMeta) */
  scope: Scope | undefined;
  cache: ReadCacheGroup | undefined;
}

/** Every query procedure, called directly (direct-call.ts). */
function queryCalls(): Map<string, BatchedQuery> {
  const calls = new Map<string, BatchedQuery>();
  for (const path of Object.keys(appRouter._def.procedures)) {
    if (!isProcedurePath(path) || procedureParts(path).type !== "query") continue;
    const procedure = directProcedure(path);
    calls.set(path, { call: directCall(procedure), scope: procedure.scope, cache: procedure.cache });
  }
  return calls;
}

/**
 * Batched queries (`GET /trpc/a,b?batch=1&input=…`, what the typed client's
 * httpBatchLink sends for every query) answered without tRPC's fetch-style
 * adapter, which builds a Request, a Response and a body stream per call:
 * in the profile of a tRPC browse that cost as much CPU as the rest of the
 * request. The answer is what the adapter would send — the same body bytes,
 * status (one error's own, 207 when a batch mixes), content type and vary
 * header, failures included, each formatted by `trpcErrorShape` as the
 * router's error formatter does (a test compares both with tRPC's adapter).
 * A request whose calls cannot start — a mutation, an unknown procedure,
 * input that is not JSON, a streamed or unbatched request — is left to the
 * adapter untouched.
 *
 * A batch of cacheable procedures only (ProcedureMeta.cache: browse pages,
 * stats) is answered from the response cache, as the REST routes are, once
 * every call's tier has let the key through.
 */
export function answerBatchedQueries(services: Services, responseCacheTtlMs = 0) {
  const calls = queryCalls();
  const cache = new ResponseCache(services.store, responseCacheTtlMs);
  // A miss renders from the database, not from the store's read cache: nothing served is older than one TTL.
  const renderServices: Services = { ...services, store: uncachedStore(services.store) };

  /** Every call run; failures formatted as on the adapter's path, where the procedure's wrapper reports them. */
  const answer = async (ctx: Context, paths: string[], batch: BatchedQuery[], args: unknown[]): Promise<RenderedResponse> => {
    const outcomes = await Promise.allSettled(batch.map((query, i) => query.call(ctx, args[i])));
    const statuses = new Set<number>();
    const answers = outcomes.map((outcome, i) => {
      if (outcome.status === "fulfilled") {
        statuses.add(200);
        return { result: { data: wireTransformer.output.serialize(outcome.value) } };
      }
      const domain = reportFailure(ctx, paths[i]!, outcome.reason);
      const shape = trpcErrorShape(domain, TRPC_ERROR_CODES_BY_KEY[toTRPCError(domain).code], ctx.requestId, paths[i]);
      statuses.add(shape.data.httpStatus);
      return { error: wireTransformer.output.serialize(shape) };
    });
    return { status: statuses.size === 1 ? statuses.values().next().value! : 207, body: JSON.stringify(answers) };
  };

  /** From the cache when every call may be cached and every tier lets the key through; undefined otherwise. */
  const cached = async (request: FastifyRequest, paths: string[], batch: BatchedQuery[], args: unknown[]) => {
    if (!cache.enabled || !batch.every((query) => query.cache)) return undefined;
    const ctx = requestContext(renderServices, request);
    const scopes = new Set(batch.map((query) => query.scope).filter((scope) => scope !== undefined));
    try {
      for (const scope of scopes) await authorize(ctx, scope);
    } catch {
      return undefined; // the uncached answer formats the refusal
    }
    const hit = cache.get(request.url);
    if (hit) return hit;
    let own = false;
    const groups = [...new Set(batch.map((query) => query.cache!))];
    const shared = await cache.render(request.url, groups, () => {
      own = true;
      return answer(ctx, paths, batch, args);
    });
    // A failure rendered for another request carries its request id: answer this one afresh.
    return own || shared.status < 300 ? shared : undefined;
  };

  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method !== "GET" || request.headers["trpc-accept"] !== undefined) return;
    const query = request.query as Record<string, string | undefined>;
    if (query.batch !== "1") return;
    const paths = (request.params as { path?: string }).path?.split(",") ?? [];
    const found = paths.map((path) => calls.get(path));
    if (found.length === 0 || found.includes(undefined)) return;
    const batch = found as BatchedQuery[];
    let inputs: Record<string, unknown> = {};
    try {
      if (query.input !== undefined) inputs = JSON.parse(query.input) as Record<string, unknown>;
    } catch {
      return;
    }
    if (inputs === null || typeof inputs !== "object" || Array.isArray(inputs)) return;
    let args: unknown[];
    try {
      args = batch.map((_, i) => {
        const raw = inputs[String(i)];
        return raw === undefined ? undefined : wireTransformer.input.deserialize(raw as never);
      });
    } catch {
      return;
    }
    const { status, body } =
      (await cached(request, paths, batch, args)) ?? (await answer(requestContext(services, request), paths, batch, args));
    return reply.code(status).header("vary", "trpc-accept, accept").type("application/json").send(body);
  };
}

/** The tRPC endpoint at /trpc: the fastify adapter, with batched queries answered directly. */
export async function registerTrpcEndpoint(app: FastifyInstance, services: Services, options: { responseCacheTtlMs?: number } = {}): Promise<void> {
  await app.register(
    async (endpoint) => {
      endpoint.addHook("preHandler", answerBatchedQueries(services, options.responseCacheTtlMs));
      await endpoint.register(fastifyTRPCPlugin, {
        trpcOptions: {
          router: appRouter,
          createContext: ({ req }) => requestContext(services, req),
        } satisfies FastifyTRPCPluginOptions<AppRouter>["trpcOptions"],
      });
    },
    { prefix: TRPC_PREFIX },
  );
}
