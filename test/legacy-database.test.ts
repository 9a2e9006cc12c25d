import { readFileSync } from "node:fs";
import { createMemoryExchangeClient } from "@memory-exchange/client";
import { buildServer, createApiKey, loadConfig, migrate, openDatabase, type MemoryExchangeServer } from "@memory-exchange/server";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { sqliteMigrations } from "../packages/server/src/db/migrations/sqlite.js";
import { adminConnection, createTestDatabase, type TestDatabase } from "../packages/server/test/support/databases.js";
import { LEGACY_CHAIN_SNAPSHOT, LEGACY_KV, legacyChainInserts, legacyExchangeInserts } from "./fixtures/legacy-rows.js";
import { testDialects } from "./support/server.js";

const legacySql = readFileSync(new URL("./fixtures/legacy-schema.sql", import.meta.url), "utf8");

/** Creates the main app's pre-existing tables and rows, as the older code left them. */
async function seedLegacyDatabase(db: TestDatabase) {
  if (db.dialect === "mysql") {
    const connection = await adminConnection();
    await connection.query(`USE \`${db.url.split("/").pop()}\``);
    await connection.query(legacySql); // the reference file verbatim
    for (const sql of [...legacyExchangeInserts((a) => a), ...legacyChainInserts((a) => a)]) await connection.query(sql);
    await connection.end();
  } else {
    const database = await openDatabase(db.config);
    if (database.dialect !== "sqlite") throw new Error("unreachable");
    // SQLite form of the same two tables (migration 0001), then the rows, with money in cents.
    for (const step of sqliteMigrations[0]!.steps) if (step.kind === "sql") database.sqlite.exec(step.sql);
    const cents = (amount: string) => String(Math.round(Number(amount) * 100));
    for (const sql of [...legacyExchangeInserts(cents), ...legacyChainInserts(cents)]) database.sqlite.exec(sql);
    await database.close();
  }
}

async function columnsOf(server: MemoryExchangeServer, table: string): Promise<string[]> {
  const { database } = server;
  if (database.dialect === "sqlite") return (database.sqlite.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
  const [rows] = await database.pool.query(
    "SELECT column_name AS name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
    [table],
  );
  return (rows as { name: string }[]).map((r) => r.name);
}

for (const dialect of await testDialects()) {
  describe(`an existing database with the older code's tables and rows (${dialect})`, () => {
    let db: TestDatabase;
    let server: MemoryExchangeServer;
    let url: string;
    const client = async (userId: number) =>
      createMemoryExchangeClient({ url, apiKey: (await createApiKey(server.services.store, { userId, name: "t", scopes: ["read", "trade"] })).key });

    beforeAll(async () => {
      db = await createTestDatabase(dialect);
      await seedLegacyDatabase(db);
      server = await buildServer(loadConfig({ DATABASE_URL: db.url, MEMORY_EXCHANGE_PORT: "0", MEMORY_EXCHANGE_HOST: "127.0.0.1", MEMORY_EXCHANGE_LOG_LEVEL: "silent" }));
      url = await server.listen();
    });
    afterAll(async () => {
      await server?.close();
      await db?.drop();
    });

    test("migration kept every legacy column and only added mx_ tables and columns", async () => {
      const legacyColumns = [...legacySql.matchAll(/^\s{2}(\w+) (?:INT|ENUM|TEXT|VARCHAR|DECIMAL|TIMESTAMP)/gm)].map((m) => m[1]);
      const actual = [...(await columnsOf(server, "memory_exchanges")), ...(await columnsOf(server, "reasoning_chains"))];
      for (const column of legacyColumns) expect(actual).toContain(column);
      expect(await columnsOf(server, "memory_exchanges")).toEqual(
        expect.arrayContaining(["description", "listing_id", "chain_id", "payload_digest", "payload_size"]),
      );
    });

    test("the legacy listing is browsable and its data intact", async () => {
      const buyer = await client(8);
      const { memories } = await buyer.memory.browse.query({});
      expect(memories).toHaveLength(1);
      expect(memories[0]).toMatchObject({ id: 1, sellerId: 7, memoryType: "kv_cache", sourceModel: "llama-3-8b", price: 4.5, qualityScore: 0.7, status: "available", tokenCount: 2, contextLength: 2 });
    });

    test("legacy trades appear in history and stats", async () => {
      const buyer = await client(8);
      const { transactions } = await buyer.memory.history.query({ role: "buyer" });
      expect(transactions.map((t) => [t.id, t.memoryId, t.memoryType, t.price]).sort()).toEqual([
        [2, 2, "long_term_memory", 12],
        [3, null, "reasoning_chain", 2.99],
      ]);
      const stats = await buyer.stats.get.query();
      expect(stats).toMatchObject({ totalMemories: 3, availableMemories: 1, totalTransactions: 2, chainUses: 1, memoryPurchases: 1, totalVolume: 14.99, totalReasoningChains: 2, activeReasoningChains: 1 });
    });

    test("pages leave the inline payloads in the database; a single read still has them", async () => {
      const { store } = server.services;
      const listings = await store.browseListings({ limit: 10, offset: 0 });
      const trades = await store.listTrades(8, "buyer", 10, 0);
      const chains = await store.browseChains({ limit: 10, offset: 0 });
      expect([listings.length, trades.length, chains.length]).toEqual([1, 2, 1]);
      for (const row of [...listings, ...trades]) expect(row).not.toHaveProperty("kvCacheData");
      for (const row of chains) expect(row).not.toHaveProperty("kvCacheSnapshot");
      expect(JSON.parse((await store.findListing(1))!.kvCacheData!)).toEqual(LEGACY_KV);
      expect(JSON.parse((await store.findChain(chains[0]!.id))!.kvCacheSnapshot!)).toEqual(LEGACY_CHAIN_SNAPSHOT);
    });

    test("the legacy listing is purchasable and delivers the stored JSON exactly; the sold row is not for sale", async () => {
      const buyer = await client(21);
      const purchase = await buyer.memory.purchase.mutate({ memoryId: 1, targetModel: "llama-3-8b" });
      expect(purchase.memory.kvCacheData).toEqual(LEGACY_KV);
      expect(purchase.alignment).toMatchObject({ applied: false, reason: "same model" });
      await expect(buyer.memory.purchase.mutate({ memoryId: 2, targetModel: "x" })).rejects.toMatchObject({ code: "CONFLICT" });
      // the buyer of the older code's sold row still owns it
      const legacyBuyer = await client(8);
      const again = await legacyBuyer.memory.purchase.mutate({ memoryId: 2, targetModel: "x" });
      expect(again).toMatchObject({ transactionId: 2, newPurchase: false });
      expect((await legacyBuyer.memory.get.query({ memoryId: 2 })).entitled).toBe(true);
    });

    test("legacy chains are listed and usable; counters continue from the stored values", async () => {
      const user = await client(30);
      const { chains } = await user.reasoningChain.browse.query({ category: "finance" });
      expect(chains.map((c) => c.chainName)).toEqual(["Financial Analysis Chain"]);
      expect(chains[0]!.inputExample).toEqual({ query: "Analyze Q4 revenue" });
      const use = await user.reasoningChain.use.mutate({ chainId: 1, inputData: { query: "Q1" }, targetModel: "gpt-4" });
      expect(use.kvCacheSnapshot).toEqual(LEGACY_CHAIN_SNAPSHOT);
      expect(use.chain).toMatchObject({ usageCount: 2, totalRevenue: 5.98 });
      await expect(user.reasoningChain.use.mutate({ chainId: 2, inputData: {}, targetModel: "gpt-4" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    });

    test("migrating again changes nothing", async () => {
      const again = await migrate(server.database);
      expect(again.applied).toEqual([]);
      const user = await client(8);
      expect((await user.memory.history.query({ role: "buyer" })).count).toBe(2);
    });
  });
}
