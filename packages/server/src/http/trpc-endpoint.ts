import { fastifyTRPCPlugin, type FastifyTRPCPluginOptions } from "@trpc/server/adapters/fastify";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { directCall, isProcedurePath, procedureParts, type DirectCall } from "../trpc/direct-call.js";
import { appRouter, type AppRouter } from "../trpc/root.js";
import type { Services } from "../trpc/trpc.js";
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
 * request. The answer is what the adapter would send (same body bytes,
 * status, content type and vary header; a test compares them). Anything
 * else — a failed call, a mutation, a streamed or unbatched request, input
 * that does not parse — is left to the adapter, so every error keeps tRPC's
 * own shape; queries have no side effects, so running one again is safe.
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
    const ctx = requestContext(services, request);
    let body: string;
    try {
      const outputs = await Promise.all(
        batch.map((call, i) => {
          const raw = inputs[String(i)];
          return call!(ctx, raw === undefined ? undefined : wireTransformer.input.deserialize(raw as never));
        }),
      );
      body = JSON.stringify(outputs.map((output) => ({ result: { data: wireTransformer.output.serialize(output) } })));
    } catch {
      return;
    }
    return reply.header("vary", "trpc-accept, accept").type("application/json").send(body);
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
