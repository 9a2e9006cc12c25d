import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryExchangeClient, type MemoryExchangeClient } from "@memory-exchange/client";
import { createApiKey, createStore, openDatabase, parseDatabaseUrl, type Database } from "@memory-exchange/server";
import { createTestDatabase, mysqlAvailable, type TestDatabase } from "../packages/server/test/support/databases.js";
import { kvCache } from "./support/fixtures.js";
import { ensureServerBuilt, mintKey, runCli, sleep, startServerProcess, type ServerProcess } from "./support/server-process.js";

/**
 * Horizontal scale: two server processes (the built binary) on one MariaDB
 * database. Racing purchases and chain uses spread over both must leave
 * exact totals, and a revocation made elsewhere must reach both within the
 * key-cache TTL.
 */

const KEY_CACHE_TTL_MS = 500;

describe.runIf(await mysqlAvailable())("two instances on one MariaDB database", () => {
  let database: TestDatabase;
  let direct: Database;
  let env: Record<string, string>;
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    await ensureServerBuilt();
    database = await createTestDatabase("mysql");
    env = { DATABASE_URL: database.url, MEMORY_EXCHANGE_KEY_CACHE_TTL_MS: String(KEY_CACHE_TTL_MS) };
    // Both start at once on an empty database: their migrations serialise on a database lock.
    [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
    direct = await openDatabase(parseDatabaseUrl(database.url));
  }, 600_000);

  afterAll(async () => {
    const exits = await Promise.all([a?.stop(), b?.stop()]);
    await direct?.close();
    await database?.drop();
    expect(exits).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
  });

  const key = async (userId: number) => (await createApiKey(createStore(direct), { userId, name: "scale", scopes: ["read", "trade"] })).key;
  /** One client per instance for the same key. */
  const clients = async (userId: number): Promise<[MemoryExchangeClient, MemoryExchangeClient]> => {
    const apiKey = await key(userId);
    return [createMemoryExchangeClient({ url: a.url, apiKey }), createMemoryExchangeClient({ url: b.url, apiKey })];
  };

  it("both instances are ready and report the same version", async () => {
    for (const server of [a, b]) expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    const [va, vb] = await Promise.all([a, b].map(async (s) => ((await (await fetch(`${s.url}/health`)).json()) as { version: string }).version));
    expect(va).toBe(vb);
  });

  it("racing purchases and chain uses through both instances leave exact totals", async () => {
    const [sellerA, sellerB] = await clients(1000);
    const { memoryId } = await sellerA.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache("llama-3-8b", 5), price: 19.99 });
    const { chainId } = await sellerB.reasoningChain.publish.mutate({
      chainName: "scale chain",
      description: "used from two instances",
      category: "ops",
      sourceModel: "llama-3-8b",
      kvCacheSnapshot: kvCache("llama-3-8b", 6),
      pricePerUse: 0.37,
    });

    const buyers = await Promise.all(Array.from({ length: 12 }, (_, i) => clients(1001 + i)));
    const users = await Promise.all(Array.from({ length: 10 }, (_, i) => clients(1101 + i)));

    // Every buyer fires 4 purchases at once, alternating instances; every user 5 chain uses.
    const purchases = buyers.map(([onA, onB]) =>
      Promise.all([onA, onB, onA, onB].map((client) => client.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" }))),
    );
    const uses = users.flatMap(([onA, onB]) =>
      [onA, onB, onA, onB, onA].map((client, n) => client.reasoningChain.use.mutate({ chainId, inputData: { n }, targetModel: "llama-3-8b" })),
    );
    const [purchaseResults, useResults] = await Promise.all([Promise.all(purchases), Promise.all(uses)]);

    for (const results of purchaseResults) {
      expect(new Set(results.map((r) => r.transactionId)).size).toBe(1);
      expect(results.filter((r) => r.newPurchase)).toHaveLength(1);
    }
    expect(new Set(useResults.map((r) => r.transactionId)).size).toBe(50);

    const expected = {
      totalTransactions: 12 + 50,
      memoryPurchases: 12,
      chainUses: 50,
      totalVolume: 258.38, // 12 × 19.99 + 50 × 0.37
    };
    expect(await sellerA.stats.get.query()).toMatchObject(expected);
    expect(await sellerB.stats.get.query()).toMatchObject(expected);
    const chain = await sellerA.reasoningChain.get.query({ chainId });
    expect(chain).toMatchObject({ usageCount: 50, totalRevenue: 18.5 });
    const { transactions } = await sellerB.memory.history.query({ role: "seller", limit: 100 });
    expect(transactions).toHaveLength(62);
  });

  it(`a key revoked elsewhere stops working on every instance within the key-cache TTL (${KEY_CACHE_TTL_MS} ms)`, async () => {
    const { key: apiKey, id } = await mintKey(env, 1200);
    const onA = createMemoryExchangeClient({ url: a.url, apiKey });
    const onB = createMemoryExchangeClient({ url: b.url, apiKey });
    // Both instances now hold the key in their caches.
    await onA.stats.get.query();
    await onB.stats.get.query();

    const revoked = await runCli(["keys", "revoke", String(id)], env);
    expect(revoked.code, revoked.stderr).toBe(0);

    await sleep(KEY_CACHE_TTL_MS + 250);
    for (const client of [onA, onB]) await expect(client.stats.get.query()).rejects.toMatchObject({ code: "UNAUTHENTICATED", status: 401 });
  });
});
