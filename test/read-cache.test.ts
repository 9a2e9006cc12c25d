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
      direct = openDatabase(parseDatabaseUrl(s.database.url));
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
  });
}

describe("read cache off (MEMORY_EXCHANGE_READ_CACHE_TTL_MS=0)", () => {
  let s: TestServer;
  let direct: Database;
  beforeAll(async () => {
    s = await startTestServer("sqlite", { MEMORY_EXCHANGE_READ_CACHE_TTL_MS: "0" });
    direct = openDatabase(parseDatabaseUrl(s.database.url));
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
