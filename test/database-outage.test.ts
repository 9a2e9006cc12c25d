import { createMemoryExchangeClient, isMemoryExchangeError, type MemoryExchangeClient } from "@memory-exchange/client";
import { buildServer, createApiKey, loadConfig, type MemoryExchangeServer } from "@memory-exchange/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, testDialects, type TestDatabase } from "../packages/server/test/support/databases.js";
import { checkErrorResponse } from "./support/error-shape.js";
import { kvCache } from "./support/fixtures.js";
import { bearer, rawRequest, trpcMutation } from "./support/raw-http.js";
import { queryRows } from "./support/rows.js";
import { TcpProxy } from "./support/tcp-proxy.js";

/**
 * Guarantee 5: with MariaDB unreachable (our own TCP proxy between the
 * service and the server, cut and restored), /ready and every request answer
 * 503 DATABASE_UNAVAILABLE at once, the process stays up, and service resumes
 * by itself when the database is back. SQLite is an embedded file: it has no
 * network to lose, so this suite runs on MariaDB only.
 */
const hasMysql = (await testDialects()).includes("mysql");

async function until<T>(what: string, attempt: () => Promise<T | undefined>, tries = 100): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await attempt();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe.runIf(hasMysql)("database outage (mysql, through a TCP proxy)", () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let server: MemoryExchangeServer;
  let url: string;
  let sellerKey: string;
  let buyerKey: string;
  let buyer: MemoryExchangeClient;
  let memoryId: number;

  beforeAll(async () => {
    database = await createTestDatabase("mysql");
    const direct = new URL(database.url);
    proxy = new TcpProxy(direct.hostname, Number(direct.port || 3306));
    await proxy.start();
    const proxied = new URL(database.url);
    proxied.host = `127.0.0.1:${proxy.port}`;
    server = await buildServer(
      loadConfig({
        DATABASE_URL: proxied.toString(),
        MEMORY_EXCHANGE_PORT: "0",
        MEMORY_EXCHANGE_HOST: "127.0.0.1",
        MEMORY_EXCHANGE_LOG_LEVEL: "silent",
        MEMORY_EXCHANGE_DB_QUERY_TIMEOUT_MS: "1000",
      }),
    );
    url = await server.listen();
    sellerKey = (await createApiKey(server.services.store, { userId: 1, name: "seller", scopes: ["read", "trade"] })).key;
    buyerKey = (await createApiKey(server.services.store, { userId: 2, name: "buyer", scopes: ["read", "trade"] })).key;
    const seller = createMemoryExchangeClient({ url, apiKey: sellerKey });
    buyer = createMemoryExchangeClient({ url, apiKey: buyerKey });
    ({ memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache(), price: 4.2 }));
  });
  afterAll(async () => {
    await server?.close().catch(() => undefined);
    await proxy?.close();
    await database?.drop();
  });

  it("serves while the database is reachable", async () => {
    expect((await rawRequest(`${url}/ready`)).status).toBe(200);
    expect(proxy.connections).toBeGreaterThan(0);
  });

  describe("while the database is unreachable", () => {
    let unseenKey: string;
    beforeAll(async () => {
      // A key the verifier has never seen: its check needs the database.
      unseenKey = (await createApiKey(server.services.store, { userId: 3, name: "late", scopes: ["read", "trade"] })).key;
      await proxy.cut();
    });

    it("/ready → 503 DATABASE_UNAVAILABLE", async () => {
      const r = await rawRequest(`${url}/ready`);
      expect(r.status).toBe(503);
      expect(checkErrorResponse(r)).toBe("DATABASE_UNAVAILABLE");
      expect(r.headers.get("retry-after")).toBe("1");
    });

    it("a tRPC purchase → 503 DATABASE_UNAVAILABLE (typed client)", async () => {
      const error = await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" }).catch((e: unknown) => e);
      expect(isMemoryExchangeError(error, "DATABASE_UNAVAILABLE"), String(error)).toBe(true);
      expect((error as { status: number }).status).toBe(503);
    });

    it("REST, an unseen key, an idempotent POST and 20 concurrent calls → 503 DATABASE_UNAVAILABLE, all of them", async () => {
      const responses = await Promise.all([
        rawRequest(`${url}/api/v1/memory/browse`, { headers: bearer(buyerKey) }),
        rawRequest(`${url}/api/v1/stats`, { headers: bearer(unseenKey) }),
        trpcMutation(url, "memory.purchase", { memoryId, targetModel: "m" }, { ...bearer(buyerKey), "idempotency-key": "outage-1" }),
        ...Array.from({ length: 20 }, () => trpcMutation(url, "reasoningChain.use", { chainId: 1, inputData: {}, targetModel: "m" }, bearer(buyerKey))),
      ]);
      for (const r of responses) {
        expect(r.status, r.text.slice(0, 200)).toBe(503);
        expect(checkErrorResponse(r)).toBe("DATABASE_UNAVAILABLE");
      }
    });

    it("the process stays up", async () => {
      const r = await rawRequest(`${url}/health`);
      expect(r.status).toBe(200);
    });
  });

  describe("when the database returns", () => {
    beforeAll(async () => {
      await proxy.restore();
    });

    it("/ready recovers by itself", async () => {
      await until("/ready to answer 200", async () => ((await rawRequest(`${url}/ready`)).status === 200 ? true : undefined));
    });

    it("requests succeed again; nothing was written during the outage", async () => {
      const purchase = await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" });
      expect(purchase.newPurchase).toBe(true);
      const rows = await queryRows(server, "SELECT id FROM memory_exchanges WHERE listing_id = ?", [memoryId]);
      expect(rows).toHaveLength(1);
      // The idempotency key of the failed attempt was never recorded: it executes now.
      const retry = await trpcMutation(url, "memory.purchase", { memoryId, targetModel: "m" }, { ...bearer(buyerKey), "idempotency-key": "outage-1" });
      expect(retry.status).toBe(200);
      expect(retry.headers.get("idempotent-replayed")).toBeNull();
    });

    it("survives a second outage the same way", async () => {
      await proxy.cut();
      expect((await rawRequest(`${url}/ready`)).status).toBe(503);
      const r = await rawRequest(`${url}/api/v1/memory/browse`, { headers: bearer(buyerKey) });
      expect(checkErrorResponse(r)).toBe("DATABASE_UNAVAILABLE");
      await proxy.restore();
      await until("/ready to answer 200", async () => ((await rawRequest(`${url}/ready`)).status === 200 ? true : undefined));
      expect((await buyer.stats.get.query()).memoryPurchases).toBe(1);
    });

    it("a silent network (packets dropped, no reset) fails requests after the query timeout instead of hanging", async () => {
      proxy.stall();
      const responses = await Promise.all([
        rawRequest(`${url}/ready`),
        rawRequest(`${url}/api/v1/memory/browse`, { headers: bearer(buyerKey) }),
        trpcMutation(url, "memory.purchase", { memoryId, targetModel: "m" }, bearer(buyerKey)),
      ]);
      for (const r of responses) {
        expect(r.status, r.text.slice(0, 200)).toBe(503);
        expect(checkErrorResponse(r)).toBe("DATABASE_UNAVAILABLE");
      }
      await proxy.restore();
      await until("/ready to answer 200", async () => ((await rawRequest(`${url}/ready`)).status === 200 ? true : undefined));
      expect((await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" })).newPurchase).toBe(false);
    });
  });
});
