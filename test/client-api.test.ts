import { MemoryExchangeError, type MemoryExchangeClient } from "@memory-exchange/client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { kvCache } from "./support/fixtures.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/** The typed client against the real server over HTTP, on each database. */
for (const dialect of await testDialects()) {
  describe(`typed client over HTTP (${dialect})`, () => {
    let s: TestServer;
    let seller: MemoryExchangeClient;
    let buyer: MemoryExchangeClient;
    let stranger: MemoryExchangeClient;

    beforeAll(async () => {
      s = await startTestServer(dialect);
      [seller, buyer, stranger] = await Promise.all([s.client(100), s.client(200), s.client(300)]);
    });
    afterAll(() => s?.close());

    test("health is public", async () => {
      const anonymous = (await import("@memory-exchange/client")).createMemoryExchangeClient({ url: s.url, apiKey: "none" });
      expect(await anonymous.health.query()).toEqual({ status: "ok", service: "memory-exchange", version: expect.any(String) });
      expect(await (await fetch(`${s.url}/health`)).json()).toMatchObject({ status: "ok", service: "memory-exchange" });
    });

    test("publish → browse → purchase delivers the payload exactly, once per buyer", async () => {
      const payload = kvCache("llama-3-8b", 7);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: payload, price: 9.99, description: "fixture" });

      const { memories } = await stranger.memory.browse.query({ memoryType: "kv_cache", minPrice: 5, maxPrice: 50, limit: 20 });
      const listed = memories.find((m) => m.id === memoryId)!;
      expect(listed).toMatchObject({ sellerId: 100, price: 9.99, status: "available", sourceModel: "llama-3-8b", tokenCount: 3, contextLength: 3, description: "fixture" });
      expect(listed.createdAt).toBeInstanceOf(Date);
      expect(listed).not.toHaveProperty("kvCacheData");

      const first = await buyer.memory.purchase.mutate({ memoryId, targetModel: "gpt-4" });
      expect(first.newPurchase).toBe(true);
      expect(JSON.stringify(first.memory.kvCacheData)).toBe(JSON.stringify(payload)); // exact numbers, key order, metadata keys
      expect(first.alignment).toMatchObject({ applied: false, sourceModel: "llama-3-8b", targetModel: "gpt-4" });

      const repeat = await buyer.memory.purchase.mutate({ memoryId, targetModel: "gpt-4" });
      expect(repeat).toMatchObject({ transactionId: first.transactionId, newPurchase: false });
      const history = await buyer.memory.history.query({ role: "buyer" });
      expect(history.transactions.filter((t) => t.memoryId === memoryId)).toHaveLength(1);
    });

    test("the payload goes only to the seller and buyers", async () => {
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "long_term_memory", kvCacheData: kvCache("m", 2), price: 1 });
      expect(await stranger.memory.get.query({ memoryId })).toMatchObject({ id: memoryId, entitled: false });
      expect(await stranger.memory.get.query({ memoryId })).not.toHaveProperty("kvCacheData");
      expect((await seller.memory.get.query({ memoryId })).kvCacheData).toEqual(kvCache("m", 2));
      await buyer.memory.purchase.mutate({ memoryId, targetModel: "m" });
      expect((await buyer.memory.get.query({ memoryId })).entitled).toBe(true);
    });

    test("sellers cannot buy their own listing; unknown ids are 404", async () => {
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache(), price: 3 });
      const own = await seller.memory.purchase.mutate({ memoryId, targetModel: "x" }).catch((e: unknown) => e);
      expect(own).toBeInstanceOf(MemoryExchangeError);
      expect(own).toMatchObject({ code: "SELF_PURCHASE", status: 422 });
      await expect(buyer.memory.purchase.mutate({ memoryId: 999_999, targetModel: "x" })).rejects.toMatchObject({ code: "NOT_FOUND", status: 404 });
    });

    test("invalid input names the fields and writes nothing", async () => {
      const before = await seller.stats.get.query();
      const error = (await seller.memory.publish
        .mutate({ memoryType: "kv_cache", kvCacheData: { sourceModel: "x", keys: [[1, 2], [3]], values: [[1, 2]] }, price: 0 })
        .catch((e: unknown) => e)) as MemoryExchangeError;
      expect(error.code).toBe("INVALID_INPUT");
      expect(error.details.map((d) => d.path).sort()).toEqual(["kvCacheData.keys.1", "price"]);
      expect(await seller.stats.get.query()).toEqual(before);
    });

    test("chains are paid per use, free for the creator, with exact counters", async () => {
      const { chainId } = await seller.reasoningChain.publish.mutate({
        chainName: "Financial Analysis Chain",
        description: "Reasoning chain for financial data analysis",
        category: "finance",
        kvCacheSnapshot: kvCache("gpt-4", 3),
        sourceModel: "gpt-4",
        pricePerUse: 2.99,
        inputExample: { query: "Analyze Q4 revenue" },
        stepCount: 5,
      });
      const use = await buyer.reasoningChain.use.mutate({ chainId, inputData: { query: "Analyze Q4 revenue" }, targetModel: "gpt-4" });
      expect(use.kvCacheSnapshot).toEqual(kvCache("gpt-4", 3));
      expect(use.alignment).toMatchObject({ applied: false, reason: "same model" });
      await buyer.reasoningChain.use.mutate({ chainId, inputData: {}, targetModel: "gpt-4" });
      const own = await seller.reasoningChain.use.mutate({ chainId, inputData: {}, targetModel: "gpt-4" });
      expect(own.chain).toMatchObject({ usageCount: 3, totalRevenue: 5.98 });

      const { chains } = await stranger.reasoningChain.browse.query({ category: "finance", limit: 20 });
      expect(chains.find((c) => c.id === chainId)).toMatchObject({ usageCount: 3, totalRevenue: 5.98, inputExample: { query: "Analyze Q4 revenue" }, stepCount: 5 });
      const sellerHistory = await seller.memory.history.query({ role: "seller" });
      expect(sellerHistory.transactions.filter((t) => t.chainId === chainId).map((t) => t.price).sort()).toEqual([0, 2.99, 2.99]);
      await expect(
        seller.reasoningChain.publish.mutate({ chainName: "x", description: "y", category: "z", kvCacheSnapshot: kvCache("a"), sourceModel: "b", pricePerUse: 1 }),
      ).rejects.toMatchObject({ code: "INVALID_INPUT" });
    });

    test("stats count listings, trades and exact volume", async () => {
      const stats = await stranger.stats.get.query();
      expect(stats.totalTransactions).toBe(stats.memoryPurchases + stats.chainUses);
      expect(stats.totalVolume).toBe(Math.round(stats.totalVolume * 100) / 100);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache(), price: 0.1 });
      await buyer.memory.purchase.mutate({ memoryId, targetModel: "x" });
      await stranger.memory.purchase.mutate({ memoryId, targetModel: "x" });
      const after = await stranger.stats.get.query();
      expect(after.totalMemories).toBe(stats.totalMemories + 1);
      expect(after.totalTransactions).toBe(stats.totalTransactions + 2);
      expect(Math.round(after.totalVolume * 100)).toBe(Math.round(stats.totalVolume * 100) + 20);
    });

    test("browse pages with a cursor", async () => {
      const page1 = await stranger.memory.browse.query({ limit: 2 });
      expect(page1.nextCursor).toEqual(expect.any(String));
      const page2 = await stranger.memory.browse.query({ limit: 2, cursor: page1.nextCursor! });
      const ids = [...page1.memories, ...page2.memories].map((m) => m.id);
      expect(new Set(ids).size).toBe(ids.length);
      await expect(stranger.memory.browse.query({ cursor: "garbage" })).rejects.toMatchObject({ code: "INVALID_INPUT" });
    });

    test("auth: missing/bad keys 401, scopes 403, admin acts for users", async () => {
      const { createMemoryExchangeClient } = await import("@memory-exchange/client");
      const bad = createMemoryExchangeClient({ url: s.url, apiKey: "mx_not_a_real_key" });
      await expect(bad.stats.get.query()).rejects.toMatchObject({ code: "UNAUTHENTICATED", status: 401 });

      const reader = await s.client(400, { scopes: ["read"] });
      await expect(reader.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache(), price: 1 })).rejects.toMatchObject({ code: "FORBIDDEN" });
      await expect(reader.apiKeys.list.query()).rejects.toMatchObject({ code: "FORBIDDEN" });

      const notAdmin = await s.client(400, { actAsUserId: 401 });
      await expect(notAdmin.stats.get.query()).rejects.toMatchObject({ code: "FORBIDDEN" });

      const admin = await s.client(1, { scopes: ["admin"], actAsUserId: 500 });
      const { memoryId } = await admin.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache(), price: 2 });
      expect((await admin.memory.get.query({ memoryId })).sellerId).toBe(500);

      const created = await admin.apiKeys.create.mutate({ userId: 600, name: "agent" });
      expect(created).toMatchObject({ userId: 600, scopes: ["read", "trade"], prefix: created.key.slice(0, 11) });
      const agent = createMemoryExchangeClient({ url: s.url, apiKey: created.key });
      expect((await agent.stats.get.query()).totalMemories).toBeGreaterThan(0);
      expect((await admin.apiKeys.list.query({ userId: 600 })).keys.map((k) => k.id)).toEqual([created.id]);
      await admin.apiKeys.revoke.mutate({ id: created.id });
      await expect(agent.stats.get.query()).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    });
  });
}
