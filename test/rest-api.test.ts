import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as mysqlSchema from "../packages/server/src/db/mysql-schema.js";
import * as sqliteSchema from "../packages/server/src/db/sqlite-schema.js";
import { kvCache } from "./support/fixtures.js";
import { expectErrorEnvelope, restClient } from "./support/rest-client.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** The seed's publish body, with a payload whose own keys (camelCase, nested) must survive untouched. */
const seedMemory = (overrides: Record<string, unknown> = {}) => ({
  memory_type: "kv_cache",
  kv_cache_data: {
    sourceModel: "gpt-3.5-turbo",
    keys: [[0.1, 0.2]],
    values: [[0.3, 0.4]],
    metadata: { camelCaseKey: 1, snake_key: 2, nestedObject: { innerKey: [1, 2] } },
  },
  price: 9.99,
  description: "High-quality KV cache for GPT-3.5",
  ...overrides,
});

const seedChain = () => ({
  chain_name: "Financial Analysis Chain",
  description: "Reasoning chain for financial data analysis",
  category: "finance",
  kv_cache_snapshot: {
    sourceModel: "gpt-4",
    keys: [[0.5, 0.25, 0.125]],
    values: [[1.5, 2.5, 3.5]],
    extraField: { keepMe: true },
  },
  source_model: "gpt-4",
  price_per_use: 2.99,
  input_example: { someQuery: "Analyze Q4 revenue" },
  output_example: { revenueGrowth: 0.12 },
});

/** A row as the older code wrote it: a completed trade of a kv_cache memory (status 'completed', a real buyer). */
async function insertLegacySoldMemory(s: TestServer): Promise<number> {
  const row = {
    sellerId: 801,
    buyerId: 802,
    memoryType: "kv_cache" as const,
    kvCacheData: JSON.stringify(kvCache("gpt-4")),
    sourceModel: "gpt-4",
    priceCents: 500,
    status: "completed" as const,
  };
  const database = s.server.database;
  if (database.dialect === "sqlite") return Number(database.db.insert(sqliteSchema.memoryExchanges).values(row).run().lastInsertRowid);
  const [result] = await database.db.insert(mysqlSchema.memoryExchanges).values(row);
  return result.insertId;
}

for (const dialect of await testDialects()) {
  describe(`REST /api/v1 (${dialect})`, () => {
    let s: TestServer;
    let rest: ReturnType<typeof restClient>;
    let seller: string;
    let buyer: string;
    beforeAll(async () => {
      s = await startTestServer(dialect);
      rest = restClient(s.url);
      seller = await s.createKey(101);
      buyer = await s.createKey(102);
    });
    afterAll(() => s.close());

    it("publishes, browses, shows, buys and lists history exactly as the seed describes", async () => {
      const published = await rest("POST", "/api/v1/memory/publish", { key: seller, body: seedMemory() });
      expect(published.status).toBe(201);
      expect(published.body).toEqual({
        success: true,
        data: { memory_id: expect.any(Number), message: "Memory published successfully" },
      });
      const memoryId: number = published.body.data.memory_id;
      // outside the seed's price window: must not show up in the browse below
      await rest("POST", "/api/v1/memory/publish", { key: seller, body: seedMemory({ price: 75 }) });

      const browse = await rest("GET", "/api/v1/memory/browse?memory_type=kv_cache&min_price=5&max_price=50&limit=20", { key: buyer });
      expect(browse.status).toBe(200);
      expect(browse.body.success).toBe(true);
      expect(browse.body.data).toEqual({ memories: [expect.any(Object)], count: 1, next_cursor: null });
      const listing = browse.body.data.memories[0];
      expect(listing).toMatchObject({
        id: memoryId,
        seller_id: 101,
        memory_type: "kv_cache",
        source_model: "gpt-3.5-turbo",
        description: "High-quality KV cache for GPT-3.5",
        price: 9.99,
        status: "available",
        created_at: expect.stringMatching(ISO),
      });
      expect(listing).not.toHaveProperty("kv_cache_data");
      expect(Object.keys(listing).every((k) => /^[a-z0-9_]+$/.test(k))).toBe(true);

      const detail = await rest("GET", `/api/v1/memory/${memoryId}`, { key: buyer });
      expect(detail.status).toBe(200);
      expect(detail.body.data).toMatchObject({ id: memoryId, entitled: false, price: 9.99 });
      expect(detail.body.data).not.toHaveProperty("kv_cache_data");

      const purchase = await rest("POST", "/api/v1/memory/purchase", { key: buyer, body: { memory_id: memoryId, target_model: "gpt-4" } });
      expect(purchase.status).toBe(200);
      expect(purchase.body.success).toBe(true);
      const bought = purchase.body.data;
      expect(bought).toMatchObject({
        transaction_id: expect.any(Number),
        new_purchase: true,
        message: "Memory purchased successfully",
        memory: { id: memoryId, seller_id: 101, memory_type: "kv_cache", price: 9.99, created_at: expect.stringMatching(ISO) },
        alignment: { applied: false, reason: expect.any(String), source_model: "gpt-3.5-turbo", target_model: "gpt-4" },
      });
      // the payload comes back with its own keys, never snake_cased
      expect(bought.memory.kv_cache_data).toEqual(seedMemory().kv_cache_data);

      const again = await rest("POST", "/api/v1/memory/purchase", { key: buyer, body: { memory_id: memoryId, target_model: "gpt-4" } });
      expect(again.status).toBe(200);
      expect(again.body.data).toMatchObject({ transaction_id: bought.transaction_id, new_purchase: false });

      const entitled = await rest("GET", `/api/v1/memory/${memoryId}`, { key: buyer });
      expect(entitled.body.data).toMatchObject({ entitled: true, kv_cache_data: seedMemory().kv_cache_data });

      const history = await rest("GET", "/api/v1/memory/my-history?role=both&limit=50", { key: buyer });
      expect(history.status).toBe(200);
      expect(history.body).toEqual({
        success: true,
        data: {
          count: 1,
          transactions: [
            {
              id: bought.transaction_id,
              role: "buyer",
              memory_id: memoryId,
              chain_id: null,
              memory_type: "kv_cache",
              seller_id: 101,
              buyer_id: 102,
              price: 9.99,
              source_model: "gpt-3.5-turbo",
              target_model: "gpt-4",
              status: "completed",
              created_at: expect.stringMatching(ISO),
            },
          ],
        },
      });
      const sellerHistory = await rest("GET", "/api/v1/memory/my-history?role=seller", { key: seller });
      expect(sellerHistory.body.data.transactions.map((t: { role: string }) => t.role)).toEqual(["seller"]);
      const noneAsBuyer = await rest("GET", "/api/v1/memory/my-history?role=buyer", { key: seller });
      expect(noneAsBuyer.body.data).toEqual({ transactions: [], count: 0 });
    });

    it("publishes, uses and browses reasoning chains; category and chain_type both filter", async () => {
      const creator = await s.createKey(201);
      const user = await s.createKey(202);
      const published = await rest("POST", "/api/v1/reasoning-chain/publish", { key: creator, body: seedChain() });
      expect(published.status).toBe(201);
      expect(published.body).toEqual({ success: true, data: { chain_id: expect.any(Number), message: "Reasoning chain published successfully" } });
      const chainId: number = published.body.data.chain_id;

      const used = await rest("POST", "/api/v1/reasoning-chain/use", {
        key: user,
        body: { chain_id: chainId, input_data: { query: "Analyze Q4 revenue", fiscalYear: 2024 }, target_model: "gpt-4" },
      });
      expect(used.status).toBe(200);
      expect(used.body.success).toBe(true);
      expect(used.body.data).toMatchObject({
        transaction_id: expect.any(Number),
        message: "Reasoning chain used successfully",
        chain: {
          id: chainId,
          creator_id: 201,
          chain_name: "Financial Analysis Chain",
          category: "finance",
          source_model: "gpt-4",
          price_per_use: 2.99,
          usage_count: 1,
          total_revenue: 2.99,
          status: "active",
          input_example: { someQuery: "Analyze Q4 revenue" },
          output_example: { revenueGrowth: 0.12 },
          created_at: expect.stringMatching(ISO),
        },
        alignment: { applied: false, target_model: "gpt-4" },
      });
      expect(used.body.data.kv_cache_snapshot).toEqual(seedChain().kv_cache_snapshot);

      const byCategory = await rest("GET", "/api/v1/reasoning-chain/browse?category=finance&limit=20", { key: user });
      expect(byCategory.status).toBe(200);
      expect(byCategory.body.data).toMatchObject({ count: 1, next_cursor: null, chains: [{ id: chainId, usage_count: 1 }] });
      expect(byCategory.body.data.chains[0]).not.toHaveProperty("kv_cache_snapshot");
      const byAlias = await rest("GET", "/api/v1/reasoning-chain/browse?chain_type=finance", { key: user });
      expect(byAlias.body.data.chains.map((c: { id: number }) => c.id)).toEqual([chainId]);
      const otherAlias = await rest("GET", "/api/v1/reasoning-chain/browse?chain_type=medicine", { key: user });
      expect(otherAlias.body.data).toEqual({ chains: [], count: 0, next_cursor: null });

      const detail = await rest("GET", `/api/v1/reasoning-chain/${chainId}`, { key: user });
      expect(detail.body.data).toMatchObject({ id: chainId, chain_name: "Financial Analysis Chain" });

      const history = await rest("GET", "/api/v1/memory/my-history?role=buyer", { key: user });
      expect(history.body.data.transactions).toMatchObject([{ role: "buyer", chain_id: chainId, memory_type: "reasoning_chain", price: 2.99 }]);
    });

    it("reports stats in snake_case", async () => {
      const stats = await rest("GET", "/api/v1/stats", { key: buyer });
      expect(stats.status).toBe(200);
      expect(stats.body).toEqual({
        success: true,
        data: {
          total_memories: 2,
          available_memories: 2,
          total_transactions: 2,
          memory_purchases: 1,
          chain_uses: 1,
          total_reasoning_chains: 1,
          active_reasoning_chains: 1,
          total_volume: 12.98,
        },
      });
    });

    it("accepts X-API-Key, camelCase bodies, unknown query parameters and paginates with next_cursor", async () => {
      const viaHeader = await rest("GET", "/api/v1/memory/browse?limit=1&unknown_param=zzz", { headers: { "x-api-key": buyer } });
      expect(viaHeader.status).toBe(200);
      expect(viaHeader.body.data.count).toBe(1);
      const cursor = viaHeader.body.data.next_cursor;
      expect(typeof cursor).toBe("string");
      const next = await rest("GET", `/api/v1/memory/browse?limit=1&cursor=${encodeURIComponent(cursor)}`, { key: buyer });
      expect(next.body.data.memories[0].id).not.toBe(viaHeader.body.data.memories[0].id);

      const camel = await rest("POST", "/api/v1/memory/publish", {
        headers: { "x-api-key": seller },
        body: { memoryType: "long_term_memory", kvCacheData: kvCache("llama-3-8b"), price: 1 },
      });
      expect(camel.status).toBe(201);
      const shown = await rest("GET", `/api/v1/memory/${camel.body.data.memory_id}`, { key: seller });
      expect(shown.body.data).toMatchObject({ memory_type: "long_term_memory", entitled: true, kv_cache_data: kvCache("llama-3-8b") });
    });

    describe("errors", () => {
      it("400 names the bad field in REST spelling and writes nothing", async () => {
        const before = (await rest("GET", "/api/v1/stats", { key: buyer })).body.data.total_memories;

        const badPrice = await rest("POST", "/api/v1/memory/publish", { key: seller, body: seedMemory({ price: -1 }) });
        expectErrorEnvelope(badPrice, 400, "INVALID_INPUT");
        expect(badPrice.body.details).toEqual([{ path: "price", message: expect.any(String) }]);
        expect(badPrice.body.error).toContain("price");

        const ragged = await rest("POST", "/api/v1/memory/publish", {
          key: seller,
          body: seedMemory({ kv_cache_data: { sourceModel: "gpt-4", keys: [[0.1, 0.2], [0.3]], values: [[1, 2], [3, 4]] } }),
        });
        expectErrorEnvelope(ragged, 400, "INVALID_INPUT");
        expect(ragged.body.details[0].path).toMatch(/^kv_cache_data\.keys(\[\d+\])*$/);
        expect(ragged.body.error).not.toContain("kvCacheData");

        const missing = await rest("POST", "/api/v1/reasoning-chain/publish", { key: seller, body: { ...seedChain(), price_per_use: undefined } });
        expectErrorEnvelope(missing, 400, "INVALID_INPUT");
        expect(missing.body.details.map((d: { path: string }) => d.path)).toEqual(["price_per_use"]);

        const badJson = await rest("POST", "/api/v1/memory/publish", { key: seller, body: "{not json" });
        expectErrorEnvelope(badJson, 400, "INVALID_INPUT");

        expect((await rest("GET", "/api/v1/stats", { key: buyer })).body.data.total_memories).toBe(before);
      });

      it("400 validates query strings and path parameters like bodies", async () => {
        const cases: [string, string][] = [
          ["/api/v1/memory/browse?limit=0", "limit"],
          ["/api/v1/memory/browse?limit=101", "limit"],
          ["/api/v1/memory/browse?limit=ten", "limit"],
          ["/api/v1/memory/browse?min_price=-5", "min_price"],
          ["/api/v1/memory/browse?max_price=cheap", "max_price"],
          ["/api/v1/memory/browse?memory_type=photos", "memory_type"],
          ["/api/v1/memory/my-history?role=broker", "role"],
          ["/api/v1/reasoning-chain/browse?limit=-1", "limit"],
          ["/api/v1/memory/not-a-number", "id"],
        ];
        for (const [url, field] of cases) {
          const response = await rest("GET", url, { key: buyer });
          expectErrorEnvelope(response, 400, "INVALID_INPUT");
          expect(response.body.details.map((d: { path: string }) => d.path), url).toEqual([field]);
        }
        const ok = await rest("GET", "/api/v1/memory/my-history", { key: buyer });
        expect(ok.status).toBe(200);
      });

      it("401 without a key or with a bad one", async () => {
        expectErrorEnvelope(await rest("GET", "/api/v1/memory/browse"), 401, "UNAUTHENTICATED");
        expectErrorEnvelope(await rest("GET", "/api/v1/stats", { key: "mx_not_a_real_key" }), 401, "UNAUTHENTICATED");
        expectErrorEnvelope(await rest("POST", "/api/v1/memory/publish", { body: seedMemory(), headers: { "x-api-key": "nope" } }), 401, "UNAUTHENTICATED");
        const health = await rest("GET", "/health");
        expect(health.status).toBe(200);
        expect(health.body).toMatchObject({ status: "ok", success: true, data: { status: "ok", service: "memory-exchange" } });
      });

      it("403 for a read-only key trading and for X-User-Id without admin", async () => {
        const readOnly = await s.createKey(301, ["read"]);
        expectErrorEnvelope(await rest("POST", "/api/v1/memory/publish", { key: readOnly, body: seedMemory() }), 403, "FORBIDDEN");
        expect((await rest("GET", "/api/v1/memory/browse", { key: readOnly })).status).toBe(200);
        expectErrorEnvelope(await rest("GET", "/api/v1/stats", { key: buyer, headers: { "x-user-id": "5" } }), 403, "FORBIDDEN");

        const admin = await s.createKey(1, ["admin"]);
        const actingAs = await rest("GET", "/api/v1/memory/my-history?role=buyer", { key: admin, headers: { "x-user-id": "102" } });
        expect(actingAs.body.data.transactions.map((t: { buyer_id: number }) => t.buyer_id)).toEqual([102]);
      });

      it("404 for unknown ids and routes", async () => {
        expectErrorEnvelope(
          await rest("POST", "/api/v1/memory/purchase", { key: buyer, body: { memory_id: 999999, target_model: "gpt-4" } }),
          404,
          "NOT_FOUND",
        );
        expectErrorEnvelope(await rest("GET", "/api/v1/memory/999999", { key: buyer }), 404, "NOT_FOUND");
        expectErrorEnvelope(
          await rest("POST", "/api/v1/reasoning-chain/use", { key: buyer, body: { chain_id: 999999, input_data: {}, target_model: "gpt-4" } }),
          404,
          "NOT_FOUND",
        );
        expectErrorEnvelope(await rest("GET", "/api/v1/nothing-here", { key: buyer }), 404, "NOT_FOUND");
      });

      it("409 buying a listing the older code already sold; 422 buying your own", async () => {
        const legacyId = await insertLegacySoldMemory(s);
        const sold = await rest("POST", "/api/v1/memory/purchase", { key: buyer, body: { memory_id: legacyId, target_model: "gpt-4" } });
        expectErrorEnvelope(sold, 409, "CONFLICT");
        const shown = await rest("GET", `/api/v1/memory/${legacyId}`, { key: buyer });
        expect(shown.body.data).toMatchObject({ id: legacyId, status: "sold", entitled: false });

        const own = (await rest("POST", "/api/v1/memory/publish", { key: seller, body: seedMemory() })).body.data.memory_id;
        expectErrorEnvelope(
          await rest("POST", "/api/v1/memory/purchase", { key: seller, body: { memory_id: own, target_model: "gpt-4" } }),
          422,
          "SELF_PURCHASE",
        );
      });
    });
  });
}
