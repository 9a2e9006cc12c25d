import { connect } from "node:net";
import { createMemoryExchangeClient, isMemoryExchangeError } from "@memory-exchange/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminConnection } from "../packages/server/test/support/databases.js";
import { checkErrorResponse } from "./support/error-shape.js";
import { kvCache } from "./support/fixtures.js";
import { bearer, rawRequest, trpcMutation } from "./support/raw-http.js";
import { tableCounts } from "./support/rows.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/**
 * Guarantee 6: per-key rate limiting (429 with Retry-After), load shedding
 * under event-loop pressure (503 OVERLOADED), request timeouts (503 TIMEOUT),
 * each answered with the envelope on a real server.
 */
async function until<T>(what: string, attempt: () => Promise<T | undefined>, tries = 100): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await attempt();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Blocks this process's event loop (the server's too: it runs in-process). */
function blockEventLoop(ms: number) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}

/** Sends the headers and part of the body, then nothing: the answer is whatever the server decides. */
function stalledUpload(url: string, path: string, key: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"json":`,
      );
    });
    let data = "";
    socket.on("data", (chunk) => {
      data += chunk.toString();
      if (/\r\n\r\n[\s\S]*\}/.test(data)) {
        socket.destroy();
        resolve(data);
      }
    });
    socket.on("error", reject);
  });
}

for (const dialect of await testDialects()) {
  describe(`abuse controls (${dialect})`, () => {
    describe("rate limiting per API key", () => {
      let s: TestServer;
      beforeAll(async () => {
        s = await startTestServer(dialect, { MEMORY_EXCHANGE_RATE_LIMIT_MAX: "5", MEMORY_EXCHANGE_RATE_LIMIT_WINDOW_MS: "60000" });
      });
      afterAll(() => s?.close());

      it("the request over the limit gets 429 RATE_LIMITED with Retry-After and writes nothing", async () => {
        const key = await s.createKey(100);
        for (let i = 0; i < 5; i++) expect((await rawRequest(`${s.url}/api/v1/stats`, { headers: bearer(key) })).status).toBe(200);
        const before = await tableCounts(s.server);
        const over = await trpcMutation(s.url, "memory.publish", { memoryType: "kv_cache", kvCacheData: kvCache(), price: 1 }, bearer(key));
        expect(over.status).toBe(429);
        expect(checkErrorResponse(over)).toBe("RATE_LIMITED");
        expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
        expect(await tableCounts(s.server)).toEqual(before);
      });

      it("counts each key on its own; the typed client sees RATE_LIMITED", async () => {
        const a = createMemoryExchangeClient({ url: s.url, apiKey: await s.createKey(101) });
        const b = createMemoryExchangeClient({ url: s.url, apiKey: await s.createKey(102) });
        for (let i = 0; i < 5; i++) await a.stats.get.query();
        const error = await a.stats.get.query().catch((e: unknown) => e);
        expect(isMemoryExchangeError(error, "RATE_LIMITED"), String(error)).toBe(true);
        expect((error as { status: number }).status).toBe(429);
        expect((await b.stats.get.query()).totalTransactions).toBeGreaterThanOrEqual(0);
      });

      it("requests without a key are counted per client address; /health is never limited", async () => {
        const anonymous = await Promise.all(Array.from({ length: 7 }, () => rawRequest(`${s.url}/api/v1/stats`)));
        expect(anonymous.filter((r) => r.status === 401)).toHaveLength(5);
        expect(anonymous.filter((r) => r.status === 429)).toHaveLength(2);
        // Made-up keys count against the sender's address too: rotating them does not escape the limit.
        const forged = await Promise.all(Array.from({ length: 3 }, (_, i) => rawRequest(`${s.url}/api/v1/stats`, { headers: bearer(`mx_forged${i}`) })));
        expect(forged.map((r) => r.status)).toEqual([429, 429, 429]);
        for (let i = 0; i < 10; i++) expect((await rawRequest(`${s.url}/health`)).status).toBe(200);
      });
    });

    describe("load shedding", () => {
      let s: TestServer;
      beforeAll(async () => {
        s = await startTestServer(dialect, { MEMORY_EXCHANGE_MAX_EVENT_LOOP_UTILIZATION: "0.5" });
      });
      afterAll(() => s?.close());

      it("a saturated event loop sheds requests with 503 OVERLOADED and Retry-After, keeps /health up, then recovers", async () => {
        const key = await s.createKey(110);
        expect((await rawRequest(`${s.url}/api/v1/stats`, { headers: bearer(key) })).status).toBe(200);
        blockEventLoop(1_500);
        const shed = await rawRequest(`${s.url}/api/v1/stats`, { headers: bearer(key) });
        expect(shed.status).toBe(503);
        expect(checkErrorResponse(shed)).toBe("OVERLOADED");
        expect(shed.headers.get("retry-after")).toBe("1");
        expect((await rawRequest(`${s.url}/health`)).status).toBe(200);
        await until("the pressure to pass", async () =>
          (await rawRequest(`${s.url}/api/v1/stats`, { headers: bearer(key) })).status === 200 ? true : undefined,
        );
      });
    });

    describe("request timeouts", () => {
      let s: TestServer;
      beforeAll(async () => {
        s = await startTestServer(dialect, { MEMORY_EXCHANGE_REQUEST_TIMEOUT_MS: "500" });
      });
      afterAll(() => s?.close());

      it("a client that stops sending its body gets 503 TIMEOUT, nothing is written", async () => {
        const key = await s.createKey(120);
        const before = await tableCounts(s.server);
        for (const path of ["/trpc/memory.publish", "/api/v1/memory/publish"]) {
          const response = await stalledUpload(s.url, path, key);
          expect(response).toMatch(/^HTTP\/1\.1 503 /);
          expect(response).toContain('"code":"TIMEOUT"');
        }
        expect(await tableCounts(s.server)).toEqual(before);
        expect((await rawRequest(`${s.url}/health`)).status).toBe(200);
      });

      if (dialect === "mysql") {
        it("a handler stuck on a lock answers 503 TIMEOUT; its Idempotency-Key stays locked (409 IN_USE), never re-executed meanwhile", async () => {
          const creator = await s.client(121);
          const { chainId } = await creator.reasoningChain.publish.mutate({
            chainName: "slow",
            description: "locked",
            category: "test",
            kvCacheSnapshot: kvCache(),
            sourceModel: "llama-3-8b",
            pricePerUse: 1,
          });
          const key = await s.createKey(122);
          const admin = await adminConnection();
          try {
            await admin.query(`USE ${new URL(s.database.url).pathname.slice(1)}`);
            await admin.beginTransaction();
            await admin.query("SELECT id FROM reasoning_chains WHERE id = ? FOR UPDATE", [chainId]);
            const use = () =>
              trpcMutation(s.url, "reasoningChain.use", { chainId, inputData: {}, targetModel: "m" }, { ...bearer(key), "idempotency-key": "slow-1" });
            const first = await use();
            expect(first.status).toBe(503);
            expect(checkErrorResponse(first)).toBe("TIMEOUT");
            const retry = await use();
            expect(retry.status).toBe(409);
            expect(checkErrorResponse(retry)).toBe("IDEMPOTENCY_KEY_IN_USE");
          } finally {
            await admin.rollback();
            await admin.end();
          }
        });
      }
    });
  });
}
