import { fastifyTRPCPlugin, type FastifyTRPCPluginOptions } from "@trpc/server/adapters/fastify";
import { TRPC_ERROR_CODES_BY_KEY } from "@trpc/server/rpc";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { directCall, isProcedurePath, procedureParts, type DirectCall } from "../trpc/direct-call.js";
import { appRouter, type AppRouter } from "../trpc/root.js";
import { reportFailure, toTRPCError, trpcErrorShape, type Services } from "../trpc/trpc.js";
import { wireTransformer } from "../trpc/wire-transformer.js";
import { requestContext } from "./request-context.js";

export const TRPC_PREFIX = "/trpc";

/** Every query procedure, called directly (direct-call.ts). */
function queryCalls(): Map<string, DirectCall> {
  const calls = new Map<string, DirectCall>();
  for (const path of Object.keys(appRouter._def.procedures))
    if (isProcedurePath(path) && procedureParts(path).type === "query") calls.set(path, directCall(path));
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
 */
export function answerBatchedQueries(services: Services) {
  const calls = queryCalls();
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method !== "GET" || request.headers["trpc-accept"] !== undefined) return;
    const query = request.query as Record<string, string | undefined>;
    if (query.batch !== "1") return;
    const paths = (request.params as { path?: string }).path?.split(",") ?? [];
    const batch = paths.map((path) => calls.get(path));
    if (batch.length === 0 || batch.includes(undefined)) return;
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
    const ctx = requestContext(services, request);
    const outcomes = await Promise.allSettled(batch.map((call, i) => call!(ctx, args[i])));
    const statuses = new Set<number>();
    const answers = outcomes.map((outcome, i) => {
      if (outcome.status === "fulfilled") {
        statuses.add(200);
        return { result: { data: wireTransformer.output.serialize(outcome.value) } };
      }
      // As on the adapter's path: the procedure's own wrapper reports the failure and hands tRPC this code.
      const domain = reportFailure(ctx, paths[i]!, outcome.reason);
      const shape = trpcErrorShape(domain, TRPC_ERROR_CODES_BY_KEY[toTRPCError(domain).code], ctx.requestId, paths[i]);
      statuses.add(shape.data.httpStatus);
      return { error: wireTransformer.output.serialize(shape) };
    });
    return reply
      .code(statuses.size === 1 ? statuses.values().next().value! : 207)
      .header("vary", "trpc-accept, accept")
      .type("application/json")
      .send(JSON.stringify(answers));
  };
}

/** The tRPC endpoint at /trpc: the fastify adapter, with batched queries answered directly. */
export async function registerTrpcEndpoint(app: FastifyInstance, services: Services): Promise<void> {
  await app.register(
    async (endpoint) => {
      endpoint.addHook("preHandler", answerBatchedQueries(services));
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
