import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import Fastify, { type FastifyInstance } from "fastify";
import superjson from "superjson";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadConfig } from "../src/config.js";
import { createApiKey } from "../src/domain/api-keys.js";
import { buildServer, type MemoryExchangeServer } from "../src/http/build-server.js";
import { answerBatchedQueries, TRPC_PREFIX } from "../src/http/trpc-endpoint.js";
import { appRouter } from "../src/trpc/root.js";
import { createContext } from "../src/trpc/trpc.js";
import { createTestDatabase, testDialects, type TestDatabase } from "./support/databases.js";

/** `/trpc/<paths>?batch=1&input=…` exactly as httpBatchLink builds it. */
const batchUrl = (paths: string[], inputs: unknown[]) =>
  `${TRPC_PREFIX}/${paths.join(",")}?batch=1&input=${encodeURIComponent(JSON.stringify(Object.fromEntries(inputs.map((input, i) => [i, superjson.serialize(input)]))))}`;

const FELL_THROUGH = 599;

/**
 * Batched queries are answered by a fast path (trpc-endpoint.ts) that must
 * send exactly what tRPC's own adapter sends, and leave every request it
 * cannot answer that way to the adapter.
 */
for (const dialect of await testDialects()) {
  describe(`batched tRPC queries answered directly (${dialect})`, () => {
    let database: TestDatabase;
    let server: MemoryExchangeServer;
    let probe: FastifyInstance;
    let headers: Record<string, string>;
    let memoryId: number;

    beforeAll(async () => {
      database = await createTestDatabase(dialect);
      server = await buildServer(loadConfig({ DATABASE_URL: database.url, MEMORY_EXCHANGE_LOG_LEVEL: "silent" }));
      const key = await createApiKey(server.services.store, { userId: 7, name: "t", scopes: ["read", "trade"] });
      headers = { authorization: `Bearer ${key.key}` };
      const published = await server.app.inject({
        method: "POST",
        url: "/api/v1/memory/publish",
        headers,
        payload: { memory_type: "kv_cache", kv_cache_data: { sourceModel: "llama-3-8b", keys: [[0.5, 1.25]], values: [[2, -3]] }, price: 4.2 },
      });
      memoryId = published.json<{ data: { memory_id: number } }>().data.memory_id;
      // Only the fast path: what it does not answer reaches this handler.
      probe = Fastify({ genReqId: () => "req-1" });
      probe.get(`${TRPC_PREFIX}/:path`, { preHandler: answerBatchedQueries(server.services) }, (_request, reply) => reply.code(FELL_THROUGH).send());
    });
    afterAll(async () => {
      await probe?.close();
      await server?.close();
      await database?.drop();
    });

    /** tRPC's own answer to the same request (its fetch adapter, the same router and context). */
    const reference = async (url: string, requestHeaders: Record<string, string>) => {
      const response = await fetchRequestHandler({
        endpoint: TRPC_PREFIX,
        req: new Request(`http://localhost${url}`, { headers: requestHeaders }),
        router: appRouter,
        createContext: () => createContext(server.services, { requestId: "req-1", header: (name) => requestHeaders[name] }),
      });
      return { status: response.status, body: await response.text(), contentType: response.headers.get("content-type"), vary: response.headers.get("vary") };
    };

    /** The fast path's answer, tRPC's adapter's, and the served endpoint's must agree to the byte. */
    const expectSameAnswer = async (url: string, sent: Record<string, string>) => {
      const fast = await probe.inject({ method: "GET", url, headers: sent });
      const expected = await reference(url, sent);
      expect(fast.statusCode).toBe(expected.status);
      expect(fast.body).toBe(expected.body);
      expect(fast.headers["content-type"]).toContain(expected.contentType);
      expect(fast.headers.vary).toBe(expected.vary);
      // The served endpoint, twice: with the response cache on (the default), a cacheable batch's second answer is a hit.
      for (let i = 0; i < 2; i++) {
        const served = await server.app.inject({ method: "GET", url, headers: { ...sent, "x-request-id": "req-1" } });
        expect(served.statusCode).toBe(expected.status);
        expect(served.body).toBe(expected.body);
      }
      return fast;
    };

    test.each<[string, () => string]>([
      ["a browse page (Dates in the output)", () => batchUrl(["memory.browse"], [{ memoryType: "kv_cache", maxPrice: 50, limit: 20 }])],
      ["a batch of three procedures", () => batchUrl(["memory.browse", "stats.get", "reasoningChain.browse"], [{ limit: 5 }, undefined, { limit: 5 }])],
      ["the seller's own listing with its payload", () => batchUrl(["memory.get"], [{ memoryId }])],
      ["the public health query", () => batchUrl(["health"], [undefined])],
    ])("%s: the same bytes, status and headers as tRPC's adapter", async (_name, url) => {
      expect((await expectSameAnswer(url(), headers)).statusCode).toBe(200);
    });

    test("a cached batch follows a write made through this process at once", async () => {
      const url = batchUrl(["memory.browse", "stats.get"], [{ limit: 1 }, undefined]);
      const page = async () => JSON.parse((await server.app.inject({ method: "GET", url, headers })).body) as { result: { data: { json: any } } }[];
      const before = await page();
      expect(await page()).toEqual(before); // a hit
      const published = await server.app.inject({
        method: "POST",
        url: "/api/v1/memory/publish",
        headers,
        payload: { memory_type: "kv_cache", kv_cache_data: { sourceModel: "llama-3-8b", keys: [[1.5]], values: [[2.5]] }, price: 1.5 },
      });
      const newId = published.json<{ data: { memory_id: number } }>().data.memory_id;
      const after = await page();
      expect(after[0]!.result.data.json.memories[0].id).toBe(newId);
      expect(after[1]!.result.data.json.totalMemories).toBe(before[1]!.result.data.json.totalMemories + 1);
    });

    test.each<[string, () => string, Record<string, string> | undefined, number]>([
      ["no API key", () => batchUrl(["memory.browse"], [{}]), {}, 401],
      ["a key without the scope", () => batchUrl(["apiKeys.list"], [{}]), undefined, 403],
      ["invalid input", () => batchUrl(["memory.browse"], [{ limit: -1 }]), undefined, 400],
      ["a missing memory", () => batchUrl(["memory.get"], [{ memoryId: 999_999 }]), undefined, 404],
      ["one failing call in a batch", () => batchUrl(["stats.get", "memory.get"], [undefined, { memoryId: 999_999 }]), undefined, 207],
    ])("%s: answered once, as tRPC's adapter answers it", async (_name, url, requestHeaders, status) => {
      expect((await expectSameAnswer(url(), requestHeaders ?? headers)).statusCode).toBe(status);
    });

    test.each<[string, () => string]>([
      ["an unknown procedure", () => batchUrl(["memory.nope"], [{}])],
      ["a mutation sent as GET", () => batchUrl(["memory.purchase"], [{ memoryId: 1, targetModel: "x" }])],
      ["input that is not JSON", () => `${TRPC_PREFIX}/memory.browse?batch=1&input=%7Bnope`],
      ["input superjson cannot read", () => `${TRPC_PREFIX}/memory.browse?batch=1&input=${encodeURIComponent('{"0":{"json":{},"meta":{"values":{"limit":["nope"]}}}}')}`],
      ["an unbatched query", () => `${TRPC_PREFIX}/stats.get`],
    ])("%s: left to tRPC's adapter, which answers as it always does", async (_name, url) => {
      expect((await probe.inject({ method: "GET", url: url(), headers })).statusCode).toBe(FELL_THROUGH);
      const served = await server.app.inject({ method: "GET", url: url(), headers: { ...headers, "x-request-id": "req-1" } });
      const expected = await reference(url(), headers);
      expect(served.statusCode).toBe(expected.status);
      expect(served.body).toBe(expected.body);
    });
  });
}
