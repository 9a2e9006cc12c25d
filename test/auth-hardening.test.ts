import { createHash } from "node:crypto";
import { createMemoryExchangeClient, isMemoryExchangeError } from "@memory-exchange/client";
import { createApiKey, hashApiKey } from "@memory-exchange/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkErrorResponse } from "./support/error-shape.js";
import { kvCache } from "./support/fixtures.js";
import { bearer, postText, rawRequest, trpcMutation } from "./support/raw-http.js";
import { queryRows } from "./support/rows.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/**
 * Guarantee 7: revoked and expired keys are refused at once in the same
 * process (the verification cache is on, 30 s TTL), scopes are enforced
 * (403), X-User-Id needs an admin key (403), and keys are only ever stored
 * and compared as SHA-256 hashes.
 */
for (const dialect of await testDialects()) {
  describe(`auth hardening (${dialect})`, () => {
    let s: TestServer;
    let admin: string;
    let memoryId: number;
    const stats = (key: string) => rawRequest(`${s.url}/api/v1/stats`, { headers: bearer(key) });

    beforeAll(async () => {
      s = await startTestServer(dialect, { MEMORY_EXCHANGE_KEY_CACHE_TTL_MS: "30000" });
      admin = await s.createKey(1, ["admin"]);
      const seller = await s.client(2);
      ({ memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache(), price: 3 }));
    });
    afterAll(() => s?.close());

    it("a revoked key gets 401 on the very next request, though it was cached", async () => {
      const created = await createApiKey(s.server.services.store, { userId: 10, name: "revoke-me", scopes: ["read", "trade"] });
      expect((await stats(created.key)).status).toBe(200); // now cached
      const adminClient = createMemoryExchangeClient({ url: s.url, apiKey: admin });
      expect(await adminClient.apiKeys.revoke.mutate({ id: created.id })).toEqual({ id: created.id, revoked: true });
      const after = await stats(created.key);
      expect(after.status).toBe(401);
      expect(checkErrorResponse(after)).toBe("UNAUTHENTICATED");
      // tRPC, and an idempotent replay, are refused too: a replay never bypasses authentication.
      const trpc = await trpcMutation(s.url, "memory.purchase", { memoryId, targetModel: "m" }, { ...bearer(created.key), "idempotency-key": "r-1" });
      expect(trpc.status).toBe(401);
    });

    it("a key used with an Idempotency-Key, then revoked, cannot replay its recorded response", async () => {
      const created = await createApiKey(s.server.services.store, { userId: 11, name: "replay", scopes: ["read", "trade"] });
      const headers = { ...bearer(created.key), "idempotency-key": "replay-after-revoke" };
      const first = await trpcMutation(s.url, "memory.purchase", { memoryId, targetModel: "m" }, headers);
      expect(first.status).toBe(200);
      await createMemoryExchangeClient({ url: s.url, apiKey: admin }).apiKeys.revoke.mutate({ id: created.id });
      const replay = await trpcMutation(s.url, "memory.purchase", { memoryId, targetModel: "m" }, headers);
      expect(replay.status).toBe(401);
    });

    it("an expired key gets 401, also when it expires while cached", async () => {
      const { store } = s.server.services;
      const past = await store.insertApiKey({
        userId: 12,
        name: "expired",
        keyHash: hashApiKey("mx_expired-key-for-test"),
        prefix: "mx_expired-",
        scopes: ["read"],
        expiresAt: new Date(Date.now() - 60_000),
      });
      expect(past.id).toBeGreaterThan(0);
      const r = await stats("mx_expired-key-for-test");
      expect(r.status).toBe(401);
      expect(checkErrorResponse(r)).toBe("UNAUTHENTICATED");

      const soon = await createApiKey(store, { userId: 13, name: "soon", scopes: ["read"], expiresAt: new Date(Date.now() + 2_000) });
      expect((await stats(soon.key)).status).toBe(200); // cached while valid
      let status = 200;
      for (let i = 0; i < 60 && status === 200; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        status = (await stats(soon.key)).status;
      }
      expect(status).toBe(401);
    });

    it("scopes: read-only keys cannot trade, trade-only keys cannot read, non-admins cannot manage keys (403)", async () => {
      const readOnly = await s.createKey(20, ["read"]);
      const tradeOnly = await s.createKey(21, ["trade"]);
      const cases = [
        await trpcMutation(s.url, "memory.purchase", { memoryId, targetModel: "m" }, bearer(readOnly)),
        await postText(s.url, "/api/v1/memory/publish", JSON.stringify({ memory_type: "kv_cache", kv_cache_data: kvCache(), price: 1 }), bearer(readOnly)),
        await stats(tradeOnly),
        await trpcMutation(s.url, "apiKeys.create", { userId: 21, scopes: ["admin"] }, bearer(tradeOnly)),
        await trpcMutation(s.url, "apiKeys.revoke", { id: 1 }, bearer(readOnly)),
      ];
      for (const r of cases) {
        expect(r.status, r.text.slice(0, 200)).toBe(403);
        expect(checkErrorResponse(r)).toBe("FORBIDDEN");
      }
      const [row] = await queryRows<{ n: number }>(s.server, "SELECT COUNT(*) AS n FROM memory_exchanges WHERE buyer_id = 20 OR seller_id = 20");
      expect(Number(row!.n)).toBe(0);
    });

    it("X-User-Id: 403 from a non-admin key; an admin key acts for that user; a malformed one is 400", async () => {
      const trader = await s.createKey(30);
      for (const r of [
        await trpcMutation(s.url, "memory.purchase", { memoryId, targetModel: "m" }, { ...bearer(trader), "x-user-id": "31" }),
        await rawRequest(`${s.url}/api/v1/memory/my-history`, { headers: { ...bearer(trader), "x-user-id": "30" } }),
      ]) {
        expect(r.status).toBe(403);
        expect(checkErrorResponse(r)).toBe("FORBIDDEN");
      }
      const actingAdmin = createMemoryExchangeClient({ url: s.url, apiKey: admin, actAsUserId: 32 });
      const purchase = await actingAdmin.memory.purchase.mutate({ memoryId, targetModel: "m" });
      const [trade] = await queryRows<{ buyer_id: number }>(s.server, "SELECT buyer_id FROM memory_exchanges WHERE id = ?", [purchase.transactionId]);
      expect(Number(trade!.buyer_id)).toBe(32);
      for (const bad of ["abc", "0", "-1", "99999999999"]) {
        const r = await rawRequest(`${s.url}/api/v1/stats`, { headers: { ...bearer(admin), "x-user-id": bad } });
        expect(r.status, bad).toBe(400);
        expect(r.json).toMatchObject({ code: "INVALID_INPUT", details: [{ path: "X-User-Id" }] });
      }
    });

    it("keys are stored and compared as SHA-256 hashes only", async () => {
      const created = await createApiKey(s.server.services.store, { userId: 40, name: "hashed", scopes: ["read"] });
      const rows = await queryRows<Record<string, unknown>>(s.server, "SELECT * FROM mx_api_keys WHERE id = ?", [created.id]);
      const stored = JSON.stringify(rows);
      expect(stored).not.toContain(created.key);
      expect(stored).not.toContain(created.key.slice(11)); // not even the secret part
      expect(rows[0]).toMatchObject({ key_hash: createHash("sha256").update(created.key).digest("hex") });

      // Same display prefix, different secret: refused. The secret itself is what is hashed and looked up.
      const forged = created.key.slice(0, 11) + "A".repeat(created.key.length - 11);
      expect((await stats(forged)).status).toBe(401);
      expect((await stats(created.key)).status).toBe(200);
      // X-API-Key is the same check.
      expect((await rawRequest(`${s.url}/api/v1/stats`, { headers: { "x-api-key": forged } })).status).toBe(401);
      expect((await rawRequest(`${s.url}/api/v1/stats`, { headers: { "x-api-key": created.key } })).status).toBe(200);
    });

    it("garbage credentials are 401, never 500", async () => {
      for (const authorization of ["Bearer", "Bearer ", "Basic abc", "Bearer mx_", `Bearer mx_${"x".repeat(5000)}`, "Bearer \u00e9\u00e9"]) {
        const r = await rawRequest(`${s.url}/api/v1/stats`, { headers: { authorization } });
        expect(r.status, authorization.slice(0, 20)).toBe(401);
        checkErrorResponse(r);
      }
      const error = await createMemoryExchangeClient({ url: s.url, apiKey: "mx_nope" }).stats.get.query().catch((e: unknown) => e);
      expect(isMemoryExchangeError(error, "UNAUTHENTICATED")).toBe(true);
    });
  });
}
