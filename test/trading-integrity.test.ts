import { isMemoryExchangeError } from "@memory-exchange/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kvCache } from "./support/fixtures.js";
import { cents, execute, queryRows } from "./support/rows.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/**
 * Guarantee 1 (atomic trades): concurrent purchases and chain uses against a
 * real server on a real database; every figure is checked against the rows
 * actually recorded, not only against what the API says.
 */
for (const dialect of await testDialects()) {
  describe(`trading integrity (${dialect})`, () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer(dialect, { MEMORY_EXCHANGE_LOG_LEVEL: process.env.MX_TEST_LOG ?? "silent" });
    });
    afterAll(() => s?.close());

    it("50 racing purchases from 25 buyers (two each) record exactly 25 transactions", async () => {
      const seller = await s.client(1000);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache(), price: 12.34 });
      const buyers = await Promise.all(Array.from({ length: 25 }, (_, i) => s.client(2000 + i)));

      const results = await Promise.all(
        buyers.flatMap((buyer, i) =>
          [0, 1].map(async () => ({ buyer: 2000 + i, ...(await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" })) })),
        ),
      );

      expect(results).toHaveLength(50);
      const byBuyer = new Map<number, typeof results>();
      for (const r of results) byBuyer.set(r.buyer, [...(byBuyer.get(r.buyer) ?? []), r]);
      expect(byBuyer.size).toBe(25);
      for (const [, pair] of byBuyer) {
        // Both calls of one buyer name the same transaction; exactly one of them created it.
        expect(pair[0]!.transactionId).toBe(pair[1]!.transactionId);
        expect(pair.filter((r) => r.newPurchase)).toHaveLength(1);
      }
      expect(new Set(results.map((r) => r.transactionId)).size).toBe(25);

      const rows = await queryRows<{ buyer_id: number; price: string | number }>(
        s.server,
        "SELECT buyer_id, price FROM memory_exchanges WHERE listing_id = ?",
        [memoryId],
      );
      expect(rows).toHaveLength(25);
      expect(new Set(rows.map((r) => Number(r.buyer_id))).size).toBe(25);

      const stats = await seller.stats.get.query();
      expect(stats.memoryPurchases).toBe(25);
      expect(stats.totalVolume).toBe(308.5); // 25 × 12.34, exact
    });

    it("50 racing uses of one chain keep usage_count and total_revenue exact", async () => {
      const creator = await s.client(3000);
      const { chainId } = await creator.reasoningChain.publish.mutate({
        chainName: "race",
        description: "a chain used concurrently",
        category: "math",
        kvCacheSnapshot: kvCache("llama-3-8b", 2),
        sourceModel: "llama-3-8b",
        pricePerUse: 0.07,
      });
      const users = await Promise.all(Array.from({ length: 9 }, (_, i) => s.client(3100 + i)));
      // 45 paid uses by 9 users plus 5 free uses by the creator, all at once.
      const callers = [...users.flatMap((u) => Array.from({ length: 5 }, () => u)), ...Array.from({ length: 5 }, () => creator)];
      const results = await Promise.all(
        callers.map((c) => c.reasoningChain.use.mutate({ chainId, inputData: { q: "2+2" }, targetModel: "llama-3-8b" })),
      );
      expect(new Set(results.map((r) => r.transactionId)).size).toBe(50);

      const [chain] = await queryRows<{ usage_count: number; total_revenue: string | number }>(
        s.server,
        "SELECT usage_count, total_revenue FROM reasoning_chains WHERE id = ?",
        [chainId],
      );
      expect(Number(chain!.usage_count)).toBe(50);
      expect(cents(s.server, chain!.total_revenue)).toBe(315); // 45 × 0.07

      const [trades] = await queryRows<{ n: number; total: string | number }>(
        s.server,
        "SELECT COUNT(*) AS n, SUM(price) AS total FROM memory_exchanges WHERE chain_id = ?",
        [chainId],
      );
      expect(Number(trades!.n)).toBe(50);
      expect(cents(s.server, trades!.total)).toBe(315);
      // The highest usage count any response saw is the final count: no lost update.
      expect(Math.max(...results.map((r) => r.chain.usageCount))).toBe(50);
      expect(new Set(results.map((r) => r.chain.usageCount)).size).toBe(50);
    });

    it("stats always equal the sum of recorded transactions", async () => {
      const client = await s.client(4000);
      const stats = await client.stats.get.query();
      const [sums] = await queryRows<{ n: number; total: string | number }>(
        s.server,
        "SELECT COUNT(*) AS n, COALESCE(SUM(price), 0) AS total FROM memory_exchanges WHERE status = 'completed'",
      );
      expect(stats.totalTransactions).toBe(Number(sums!.n));
      expect(Math.round(stats.totalVolume * 100)).toBe(cents(s.server, sums!.total));
    });

    it("a chain deactivated mid-race stops further uses without a partial row", async () => {
      const creator = await s.client(5000);
      const { chainId } = await creator.reasoningChain.publish.mutate({
        chainName: "retiring",
        description: "deactivated while in use",
        category: "math",
        kvCacheSnapshot: kvCache("llama-3-8b", 3),
        sourceModel: "llama-3-8b",
        pricePerUse: 1,
      });
      const user = await s.client(5001);
      await user.reasoningChain.use.mutate({ chainId, inputData: {}, targetModel: "llama-3-8b" });
      await execute(s.server, "UPDATE reasoning_chains SET status = 'inactive' WHERE id = ?", [chainId]);
      const error = await user.reasoningChain.use.mutate({ chainId, inputData: {}, targetModel: "llama-3-8b" }).catch((e: unknown) => e);
      expect(isMemoryExchangeError(error, "NOT_FOUND"), String(error)).toBe(true);
      const [row] = await queryRows<{ usage_count: number }>(s.server, "SELECT usage_count FROM reasoning_chains WHERE id = ?", [chainId]);
      expect(Number(row!.usage_count)).toBe(1);
      const [trades] = await queryRows<{ n: number }>(s.server, "SELECT COUNT(*) AS n FROM memory_exchanges WHERE chain_id = ?", [chainId]);
      expect(Number(trades!.n)).toBe(1);
    });
  });
}
