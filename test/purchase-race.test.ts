import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { kvCache } from "./support/fixtures.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

for (const dialect of await testDialects()) {
  describe(`racing purchases (${dialect})`, () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer(dialect);
    });
    afterAll(() => s?.close());

    test("20 parallel purchases of one listing by one buyer yield exactly one transaction", async () => {
      const seller = await s.client(1);
      const buyer = await s.client(2);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache(), price: 12.34 });

      const results = await Promise.all(Array.from({ length: 20 }, () => buyer.memory.purchase.mutate({ memoryId, targetModel: "gpt-4" })));

      expect(new Set(results.map((r) => r.transactionId)).size).toBe(1);
      expect(results.filter((r) => r.newPurchase)).toHaveLength(1);
      const { transactions } = await buyer.memory.history.query({ role: "buyer" });
      expect(transactions).toHaveLength(1);
      const stats = await buyer.stats.get.query();
      expect(stats).toMatchObject({ totalTransactions: 1, totalVolume: 12.34 });
    });
  });
}
