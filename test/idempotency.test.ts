import { createMemoryExchangeClient, isMemoryExchangeError } from "@memory-exchange/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdempotencyKeys } from "../packages/server/src/http/idempotency/idempotency-keys.js";
import { createIdempotencyStore } from "../packages/server/src/http/idempotency/idempotency-store.js";
import { kvCache } from "./support/fixtures.js";
import { adminConnection } from "../packages/server/test/support/databases.js";
import { bearer, postText, trpcMutation } from "./support/raw-http.js";
import { cents, queryRows, tableCounts } from "./support/rows.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/**
 * Guarantee 2: Idempotency-Key on every POST with Stripe's semantics, through
 * real HTTP (tRPC and REST) on both dialects, and the claim rules (race, 24 h
 * expiry, 5xx release) on the real idempotency tables.
 */
for (const dialect of await testDialects()) {
  describe(`idempotency keys (${dialect})`, () => {
    let s: TestServer;
    let key: string;
    let chainId: number;

    const chainUsage = async () => {
      const [row] = await queryRows<{ usage_count: number; total_revenue: unknown }>(
        s.server,
        "SELECT usage_count, total_revenue FROM reasoning_chains WHERE id = ?",
        [chainId],
      );
      return { usageCount: Number(row!.usage_count), revenueCents: cents(s.server, row!.total_revenue) };
    };
    const use = (idempotencyKey: string, input: Record<string, unknown> = {}, apiKey = key) =>
      trpcMutation(s.url, "reasoningChain.use", { chainId, inputData: { q: 1 }, targetModel: "llama-3-8b", ...input }, {
        ...bearer(apiKey),
        "idempotency-key": idempotencyKey,
      });

    beforeAll(async () => {
      s = await startTestServer(dialect);
      key = await s.createKey(71);
      const creator = await s.client(70);
      ({ chainId } = await creator.reasoningChain.publish.mutate({
        chainName: "idempotent",
        description: "used with idempotency keys",
        category: "test",
        kvCacheSnapshot: kvCache("llama-3-8b", 4),
        sourceModel: "llama-3-8b",
        pricePerUse: 2.5,
      }));
    });
    afterAll(() => s?.close());

    it("same key and body: executes once and replays the first response (status and body)", async () => {
      const before = await chainUsage();
      const first = await use("replay-1");
      const second = await use("replay-1");
      expect(first.status).toBe(200);
      expect(second.status).toBe(200);
      expect(second.text).toBe(first.text);
      expect(second.headers.get("idempotent-replayed")).toBe("true");
      expect(first.headers.get("idempotent-replayed")).toBeNull();
      expect(await chainUsage()).toEqual({ usageCount: before.usageCount + 1, revenueCents: before.revenueCents + 250 });
    });

    it("same key, different body: 409 IDEMPOTENCY_KEY_REUSED and nothing written", async () => {
      expect((await use("reuse-1")).status).toBe(200);
      const before = await chainUsage();
      const counts = await tableCounts(s.server);
      const other = await use("reuse-1", { inputData: { q: 2 } });
      expect(other.status).toBe(409);
      expect(other.json).toMatchObject({ success: false, code: "IDEMPOTENCY_KEY_REUSED", request_id: expect.any(String) });
      expect(await chainUsage()).toEqual(before);
      expect(await tableCounts(s.server)).toEqual(counts);
    });

    it("keys are scoped to the API key: another key with the same Idempotency-Key executes on its own", async () => {
      const otherKey = await s.createKey(72);
      const before = await chainUsage();
      const mine = await use("scoped-1");
      const theirs = await use("scoped-1", {}, otherKey);
      expect(mine.status).toBe(200);
      expect(theirs.status).toBe(200);
      expect(theirs.headers.get("idempotent-replayed")).toBeNull();
      expect((await chainUsage()).usageCount).toBe(before.usageCount + 2);
    });

    it("20 racing requests with one key execute exactly once; the others replay it or get 409 IN_USE", async () => {
      const before = await chainUsage();
      const results = await Promise.all(Array.from({ length: 20 }, () => use("race-1")));
      const ok = results.filter((r) => r.status === 200);
      const busy = results.filter((r) => r.status === 409);
      expect(ok.length + busy.length).toBe(20);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      expect(new Set(ok.map((r) => r.text)).size).toBe(1);
      for (const r of busy) {
        expect(r.json).toMatchObject({ code: "IDEMPOTENCY_KEY_IN_USE" });
        expect(r.headers.get("retry-after")).toBe("1");
      }
      expect((await chainUsage()).usageCount).toBe(before.usageCount + 1);
      // Once the first finished, a retry replays it.
      const retry = await use("race-1");
      expect(retry.status).toBe(200);
      expect(retry.text).toBe(ok[0]!.text);
    });

    it("covers publish: a retried publish creates one listing", async () => {
      const input = { memoryType: "kv_cache", kvCacheData: kvCache("llama-3-8b", 9), price: 3 };
      const headers = { ...bearer(key), "idempotency-key": "publish-1" };
      const before = await tableCounts(s.server, ["memory_exchanges"]);
      const first = await trpcMutation(s.url, "memory.publish", input, headers);
      const second = await trpcMutation(s.url, "memory.publish", input, headers);
      expect(first.status).toBe(200);
      expect(second.text).toBe(first.text);
      expect((await tableCounts(s.server, ["memory_exchanges"])).memory_exchanges).toBe(before.memory_exchanges! + 1);
    });

    it("covers REST POSTs the same way", async () => {
      const body = JSON.stringify({ chain_id: chainId, input_data: { rest: true }, target_model: "llama-3-8b" });
      const headers = { ...bearer(key), "idempotency-key": "rest-1" };
      const before = await chainUsage();
      const first = await postText(s.url, "/api/v1/reasoning-chain/use", body, headers);
      const second = await postText(s.url, "/api/v1/reasoning-chain/use", body, headers);
      expect(first.status).toBe(200);
      expect(second.status).toBe(200);
      expect(second.text).toBe(first.text);
      expect((await chainUsage()).usageCount).toBe(before.usageCount + 1);
      const changed = await postText(s.url, "/api/v1/reasoning-chain/use", body.replace("true", "false"), headers);
      expect(changed.status).toBe(409);
      expect(changed.json).toMatchObject({ code: "IDEMPOTENCY_KEY_REUSED" });
    });

    it("replays a 4xx outcome too, without executing", async () => {
      const first = await use("bad-1", { chainId: 999_999 });
      const second = await use("bad-1", { chainId: 999_999 });
      expect(first.status).toBe(404);
      expect(second.status).toBe(404);
      expect(second.text).toBe(first.text);
    });

    it("the typed client sends a key through its headers option; a retry replays", async () => {
      const client = createMemoryExchangeClient({ url: s.url, apiKey: key, headers: { "idempotency-key": "client-1" } });
      const before = await chainUsage();
      const a = await client.reasoningChain.use.mutate({ chainId, inputData: { c: 1 }, targetModel: "llama-3-8b" });
      const b = await client.reasoningChain.use.mutate({ chainId, inputData: { c: 1 }, targetModel: "llama-3-8b" });
      expect(b).toEqual(a);
      expect((await chainUsage()).usageCount).toBe(before.usageCount + 1);
      const error = await client.reasoningChain.use.mutate({ chainId, inputData: { c: 2 }, targetModel: "llama-3-8b" }).catch((e: unknown) => e);
      expect(isMemoryExchangeError(error, "IDEMPOTENCY_KEY_REUSED")).toBe(true);
    });

    it("Idempotency-Key: up to 255 visible ASCII characters, else 400 naming the header", async () => {
      expect((await use("k".repeat(255))).status).toBe(200);
      const before = await chainUsage();
      for (const bad of ["k".repeat(256), "has space"]) {
        const r = await use(bad);
        expect(r.status).toBe(400);
        expect(r.json).toMatchObject({ code: "INVALID_INPUT", details: [{ path: "Idempotency-Key" }] });
      }
      expect(await chainUsage()).toEqual(before);
    });

    it("keys are case-sensitive", async () => {
      const before = await chainUsage();
      await use("Case-1");
      await use("case-1");
      expect((await chainUsage()).usageCount).toBe(before.usageCount + 2);
    });

    it("requests without a valid API key are left to auth (401), not recorded", async () => {
      const r = await use("nokey-1", {}, "mx_not-a-real-key");
      expect(r.status).toBe(401);
      const [row] = await queryRows<{ n: number }>(s.server, "SELECT COUNT(*) AS n FROM mx_idempotency_keys WHERE idempotency_key = 'nokey-1'");
      expect(Number(row!.n)).toBe(0);
    });

    describe("claim rules on the real tables", () => {
      let clock = 1_000_000;
      let keys: IdempotencyKeys;
      beforeAll(() => {
        keys = new IdempotencyKeys(createIdempotencyStore(s.server.database), { ttlMs: 24 * 3600_000, leaseMs: 60_000, now: () => clock });
      });

      it("a second claim while the first is in flight is refused; after completion it replays", async () => {
        const first = await keys.claim(9001, "rules-1", "h1");
        expect(first.kind).toBe("execute");
        expect((await keys.claim(9001, "rules-1", "h1")).kind).toBe("in_flight");
        expect((await keys.claim(9001, "rules-1", "h2")).kind).toBe("mismatch");
        if (first.kind !== "execute") throw new Error("unreachable");
        await keys.complete(first, 201, "application/json", Buffer.from('{"ok":true}'));
        const replay = await keys.claim(9001, "rules-1", "h1");
        expect(replay).toMatchObject({ kind: "replay", statusCode: 201, contentType: "application/json" });
        if (replay.kind === "replay") expect(replay.body.toString()).toBe('{"ok":true}');
      });

      it("a released (5xx) claim can be retried with the same key", async () => {
        const first = await keys.claim(9001, "rules-2", "h1");
        if (first.kind !== "execute") throw new Error("expected execute");
        await keys.release(first);
        expect((await keys.claim(9001, "rules-2", "h1")).kind).toBe("execute");
      });

      it("an abandoned in-flight claim is taken over after its lease; the old owner can no longer complete it", async () => {
        const first = await keys.claim(9001, "rules-3", "h1");
        if (first.kind !== "execute") throw new Error("expected execute");
        clock += 60_001;
        const second = await keys.claim(9001, "rules-3", "h1");
        expect(second.kind).toBe("execute");
        expect(await keys.complete(first, 200, null, Buffer.from("stale"))).toBe(false);
        if (second.kind === "execute") expect(await keys.complete(second, 200, null, Buffer.from("fresh"))).toBe(true);
        const replay = await keys.claim(9001, "rules-3", "h1");
        expect(replay.kind === "replay" && replay.body.toString()).toBe("fresh");
      });

      it("keys are forgotten after 24 h: the same key executes again", async () => {
        const first = await keys.claim(9001, "rules-4", "h1");
        if (first.kind !== "execute") throw new Error("expected execute");
        await keys.complete(first, 200, null, Buffer.from("day one"));
        clock += 24 * 3600_000 - 1;
        expect((await keys.claim(9001, "rules-4", "h2")).kind).toBe("mismatch");
        clock += 2;
        expect((await keys.claim(9001, "rules-4", "h2")).kind).toBe("execute");
      });

      it("large responses are stored in chunks and replayed byte for byte", async () => {
        const body = Buffer.from(Array.from({ length: 400_000 }, (_, i) => `${Math.sin(i)}`).join(","));
        const first = await keys.claim(9001, "rules-5", "h1");
        if (first.kind !== "execute") throw new Error("expected execute");
        await keys.complete(first, 200, "application/json", body);
        const replay = await keys.claim(9001, "rules-5", "h1");
        expect(replay.kind === "replay" && replay.body.equals(body)).toBe(true);
      });
    });

    if (dialect === "mysql") {
      it("a retry while the first request is blocked mid-execution gets 409 IN_USE, then the replay", async () => {
        // Hold the chain's row lock from another connection: the first use waits inside its transaction.
        const admin = await adminConnection();
        const database = new URL(s.database.url).pathname.slice(1);
        try {
          await admin.query(`USE ${database}`);
          await admin.beginTransaction();
          await admin.query("SELECT id FROM reasoning_chains WHERE id = ? FOR UPDATE", [chainId]);
          const first = use("blocked-1");
          // The record is claimed before the handler blocks; wait until it exists.
          for (let i = 0; i < 200; i++) {
            const rows = await queryRows(s.server, "SELECT id FROM mx_idempotency_keys WHERE idempotency_key = 'blocked-1'");
            if (rows.length > 0) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          const retry = await use("blocked-1");
          expect(retry.status).toBe(409);
          expect(retry.json).toMatchObject({ code: "IDEMPOTENCY_KEY_IN_USE" });
          await admin.commit();
          const done = await first;
          expect(done.status).toBe(200);
          const replay = await use("blocked-1");
          expect(replay.text).toBe(done.text);
        } finally {
          await admin.end();
        }
      });
    }
  });
}
