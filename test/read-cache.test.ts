import type { MemoryExchangeClient } from "@memory-exchange/client";
import { createStore, openDatabase, parseDatabaseUrl, type Database, type Store } from "@memory-exchange/server";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { kvCache } from "./support/fixtures.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/**
 * The read cache (browse pages, stats) on each database: a write through the
 * service is visible to the very next read in the same process; a write that
 * bypasses the service (another instance, the older code) is served only
 * after the TTL, which is long here so that is observable without timing.
 */
for (const dialect of await testDialects()) {
  describe(`read cache (${dialect})`, () => {
    let s: TestServer;
    let seller: MemoryExchangeClient;
    let buyer: MemoryExchangeClient;
    let direct: Database;
    let elsewhere: Store;

    beforeAll(async () => {
      s = await startTestServer(dialect, { MEMORY_EXCHANGE_READ_CACHE_TTL_MS: "600000" });
      [seller, buyer] = await Promise.all([s.client(10), s.client(20)]);
      direct = await openDatabase(parseDatabaseUrl(s.database.url));
      elsewhere = createStore(direct);
    });
    afterAll(async () => {
      await direct?.close();
      await s?.close();
    });

    const ids = (page: { memories: { id: number }[] }) => page.memories.map((m) => m.id);

    test("a publish, purchase or chain use is visible to the next browse and stats at once", async () => {
      const before = await buyer.memory.browse.query({ memoryType: "kv_cache" });
      const statsBefore = await buyer.stats.get.query();
      const chainsBefore = await buyer.reasoningChain.browse.query({});

      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache("m", 1), price: 4.2 });
      expect(ids(await buyer.memory.browse.query({ memoryType: "kv_cache" }))).toEqual([memoryId, ...ids(before)]);
      // REST reads the same cache through the same procedures.
      const rest = (await (
        await fetch(`${s.url}/api/v1/memory/browse?memory_type=kv_cache`, { headers: { authorization: `Bearer ${await s.createKey(30)}` } })
      ).json()) as { data: { memories: { id: number }[] } };
      expect(rest.data.memories[0]!.id).toBe(memoryId);

      await buyer.memory.purchase.mutate({ memoryId, targetModel: "m" });
      const statsAfter = await buyer.stats.get.query();
      expect(statsAfter.totalMemories).toBe(statsBefore.totalMemories + 1);
      expect(statsAfter.memoryPurchases).toBe(statsBefore.memoryPurchases + 1);
      expect(Math.round(statsAfter.totalVolume * 100)).toBe(Math.round(statsBefore.totalVolume * 100) + 420);

      const { chainId } = await seller.reasoningChain.publish.mutate({
        chainName: "cached",
        description: "cache test",
        category: "cache",
        sourceModel: "m",
        kvCacheSnapshot: kvCache("m", 2),
        pricePerUse: 0.5,
      });
      const listed = await buyer.reasoningChain.browse.query({});
      expect(listed.chains.map((c) => c.id)).toEqual([chainId, ...chainsBefore.chains.map((c) => c.id)]);
      await buyer.reasoningChain.use.mutate({ chainId, inputData: {}, targetModel: "m" });
      const used = (await buyer.reasoningChain.browse.query({})).chains.find((c) => c.id === chainId)!;
      expect(used).toMatchObject({ usageCount: 1, totalRevenue: 0.5 });
    });

    test("a write that bypasses this process is served after the TTL; the next write here shows it too", async () => {
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "long_term_memory", kvCacheData: kvCache("m", 3), price: 1 });
      const cached = ids(await buyer.memory.browse.query({ memoryType: "long_term_memory" }));
      expect(cached[0]).toBe(memoryId);
      const template = (await elsewhere.findListing(memoryId))!;
      const outside = await elsewhere.insertListing({
        sellerId: 11,
        memoryType: "long_term_memory",
        sourceModel: "m",
        priceCents: 100,
        description: "written by another instance",
        tokenCount: null,
        contextLength: null,
        payloadDigest: template.payloadDigest!,
        payloadSize: template.payloadSize!,
      });
      expect(ids(await buyer.memory.browse.query({ memoryType: "long_term_memory" }))).toEqual(cached);

      const { memoryId: next } = await seller.memory.publish.mutate({ memoryType: "long_term_memory", kvCacheData: kvCache("m", 4), price: 1 });
      expect(ids(await buyer.memory.browse.query({ memoryType: "long_term_memory" }))).toEqual([next, outside, ...cached]);
    });

    test("REST and batched tRPC responses are rendered from the database, not from the store's cached page (nothing served is older than one TTL)", async () => {
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache("m", 7), price: 8.75 });
      const filter = { memoryType: "kv_cache", minPrice: 8.75, maxPrice: 8.75, limit: 7 } as const;
      // An unbatched tRPC query goes through tRPC's adapter and the procedure, which reads through the store's cache.
      const key = await s.createKey(44, ["read"]);
      const unbatched = async () => {
        const url = `${s.url}/trpc/memory.browse?input=${encodeURIComponent(JSON.stringify({ json: filter }))}`;
        const body = (await (await fetch(url, { headers: { authorization: `Bearer ${key}` } })).json()) as { result: { data: { json: { memories: { id: number }[] } } } };
        return ids(body.result.data.json);
      };
      expect(await unbatched()).toEqual([memoryId]); // the store's page is cached now
      const template = (await elsewhere.findListing(memoryId))!;
      const outside = await elsewhere.insertListing({ ...template, sellerId: 13, sourceModel: "m", payloadDigest: template.payloadDigest!, payloadSize: template.payloadSize! });
      expect(await unbatched()).toEqual([memoryId]); // the store's cached page, within the TTL
      const response = await fetch(`${s.url}/api/v1/memory/browse?memory_type=kv_cache&min_price=8.75&max_price=8.75&limit=7`, {
        headers: { authorization: `Bearer ${await s.createKey(43, ["read"])}` },
      });
      const rest = (await response.json()) as { data: { memories: { id: number }[] } };
      expect(rest.data.memories.map((m) => m.id)).toEqual([outside, memoryId]);
      // The typed client's batched query, answered by the tRPC response cache: its first render reads the database too.
      expect(ids(await buyer.memory.browse.query(filter))).toEqual([outside, memoryId]);
    });

    test("REST browse and stats: rendered responses follow writes here at once, other writes after the TTL, and check the key on every hit", async () => {
      const reader = await s.createKey(40, ["read"]);
      const get = async (path: string, key = reader) => {
        const response = await fetch(`${s.url}/api/v1${path}`, { headers: { authorization: `Bearer ${key}` } });
        return { status: response.status, text: await response.text() };
      };
      const browse = "/memory/browse?memory_type=reasoning_chain&limit=5";
      const restIds = (text: string) => (JSON.parse(text) as { data: { memories: { id: number }[] } }).data.memories.map((m) => m.id);

      const first = await get(browse);
      const second = await get(browse);
      expect(second).toEqual(first); // a hit is the same bytes as the render

      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "reasoning_chain", kvCacheData: kvCache("m", 5), price: 3 });
      const afterPublish = await get(browse);
      expect(restIds(afterPublish.text)[0]).toBe(memoryId);

      const template = (await elsewhere.findListing(memoryId))!;
      const outside = await elsewhere.insertListing({ ...template, sellerId: 12, sourceModel: "m", payloadDigest: template.payloadDigest!, payloadSize: template.payloadSize! });
      expect(await get(browse)).toEqual(afterPublish); // written elsewhere: served after the TTL (600 s here)

      // Every hit still authenticates and checks the scope.
      expect((await get(browse, "mx_made_up_key")).status).toBe(401);
      expect((await get(browse, await s.createKey(41, ["trade"]))).status).toBe(403);
      const revoked = await s.createKey(42, ["read"]);
      expect((await get(browse, revoked)).status).toBe(200);
      const admin = await s.client(1, { scopes: ["admin"] });
      const { keys } = await admin.apiKeys.list.query({ userId: 42 });
      await admin.apiKeys.revoke.mutate({ id: keys[0]!.id });
      expect((await get(browse, revoked)).status).toBe(401);

      const statsBefore = JSON.parse((await get("/stats")).text) as { data: { total_transactions: number } };
      await buyer.memory.purchase.mutate({ memoryId, targetModel: "m" });
      const statsAfter = JSON.parse((await get("/stats")).text) as { data: { total_transactions: number } };
      expect(statsAfter.data.total_transactions).toBe(statsBefore.data.total_transactions + 1);

      const { memoryId: next } = await seller.memory.publish.mutate({ memoryType: "reasoning_chain", kvCacheData: kvCache("m", 6), price: 3 });
      expect(restIds((await get(browse)).text).slice(0, 3)).toEqual([next, outside, memoryId]);
    });
  });
}

describe("REST response cache with a short TTL", () => {
  test("a write made elsewhere shows once the TTL has passed", async () => {
    const s = await startTestServer("sqlite", { MEMORY_EXCHANGE_READ_CACHE_TTL_MS: "200" });
    const direct = await openDatabase(parseDatabaseUrl(s.database.url));
    try {
      const seller = await s.client(10);
      const key = await s.createKey(20, ["read"]);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache("m", 1), price: 2 });
      const browse = async () =>
        ((await (await fetch(`${s.url}/api/v1/memory/browse`, { headers: { authorization: `Bearer ${key}` } })).json()) as { data: { count: number } }).data.count;
      expect(await browse()).toBe(1);
      const template = (await createStore(direct).findListing(memoryId))!;
      await createStore(direct).insertListing({ ...template, sellerId: 12, sourceModel: "m", payloadDigest: template.payloadDigest!, payloadSize: template.payloadSize! });
      await new Promise((resolve) => setTimeout(resolve, 450)); // past the TTL of the response and of the store entry below it
      expect(await browse()).toBe(2);
    } finally {
      await direct.close();
      await s.close();
    }
  });
});

describe("read cache off (MEMORY_EXCHANGE_READ_CACHE_TTL_MS=0)", () => {
  let s: TestServer;
  let direct: Database;
  beforeAll(async () => {
    s = await startTestServer("sqlite", { MEMORY_EXCHANGE_READ_CACHE_TTL_MS: "0" });
    direct = await openDatabase(parseDatabaseUrl(s.database.url));
  });
  afterAll(async () => {
    await direct?.close();
    await s?.close();
  });

  test("every read goes to the database", async () => {
    const seller = await s.client(10);
    const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache("m", 1), price: 2 });
    expect((await seller.stats.get.query()).totalMemories).toBe(1);
    const template = (await createStore(direct).findListing(memoryId))!;
    await createStore(direct).insertListing({ ...template, sellerId: 12, tokenCount: null, contextLength: null, payloadDigest: template.payloadDigest!, payloadSize: template.payloadSize!, sourceModel: "m" });
    expect((await seller.stats.get.query()).totalMemories).toBe(2);
  });
});
