import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kvCache } from "./support/fixtures.js";
import { metricType, sample } from "./support/prometheus.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/**
 * GET /metrics: Prometheus text (prom-client), no API key. Trades, volume and
 * payload bytes are process-wide counters, so every check reads a delta.
 */

async function scrape(url: string): Promise<string> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return response.text();
}

const counter = (text: string, name: string, labels: Record<string, string>) => sample(text, name, labels) ?? 0;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

for (const dialect of await testDialects()) {
  describe(`/metrics on ${dialect}`, () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer(dialect);
    });
    afterAll(() => s.close());

    it("serves default process metrics and the metric families the runbook names, without a key", async () => {
      const text = await scrape(s.url);
      expect(metricType(text, "process_cpu_user_seconds_total")).toBe("counter");
      expect(metricType(text, "nodejs_heap_size_used_bytes")).toBe("gauge");
      expect(metricType(text, "nodejs_eventloop_lag_seconds")).toBe("gauge");
      expect(metricType(text, "http_request_duration_seconds")).toBe("histogram");
      expect(metricType(text, "http_requests_total")).toBe("counter");
      expect(metricType(text, "memory_exchange_trades_total")).toBe("counter");
      expect(metricType(text, "memory_exchange_trade_volume_cents_total")).toBe("counter");
      expect(metricType(text, "memory_exchange_payload_bytes_total")).toBe("counter");
      for (const gauge of ["in_use", "idle", "waiting", "max"]) expect(metricType(text, `memory_exchange_db_pool_${gauge}`)).toBe("gauge");
      expect(sample(text, "memory_exchange_db_pool_max")).toBe(s.config.database.dialect === "mysql" ? s.config.database.poolSize : 1);
      expect(sample(text, "memory_exchange_trades_total", { kind: "chain_use" })).toBeGreaterThanOrEqual(0);
    });

    it("counts trades and exact volume: a repeat purchase adds nothing, a creator's own use adds a free trade", async () => {
      const seller = await s.client(301);
      const buyer = await s.client(302);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache("llama-3-8b", 3), price: 12.34 });
      const { chainId } = await seller.reasoningChain.publish.mutate({
        chainName: "metrics chain",
        description: "counted",
        category: "math",
        sourceModel: "llama-3-8b",
        kvCacheSnapshot: kvCache("llama-3-8b", 4),
        pricePerUse: 0.07,
      });

      const before = await scrape(s.url);
      await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" });
      await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" }); // repeat: same transaction, no charge
      await buyer.reasoningChain.use.mutate({ chainId, inputData: { q: 1 }, targetModel: "llama-3-8b" });
      await buyer.reasoningChain.use.mutate({ chainId, inputData: { q: 2 }, targetModel: "llama-3-8b" });
      await seller.reasoningChain.use.mutate({ chainId, inputData: { q: 3 }, targetModel: "llama-3-8b" }); // creator: free
      const after = await scrape(s.url);

      const delta = (name: string, labels: Record<string, string>) => counter(after, name, labels) - counter(before, name, labels);
      expect(delta("memory_exchange_trades_total", { kind: "memory_purchase" })).toBe(1);
      expect(delta("memory_exchange_trade_volume_cents_total", { kind: "memory_purchase" })).toBe(1234);
      expect(delta("memory_exchange_trades_total", { kind: "chain_use" })).toBe(3);
      expect(delta("memory_exchange_trade_volume_cents_total", { kind: "chain_use" })).toBe(14);
    });

    it("counts payload bytes in on publish and out on delivery", async () => {
      const seller = await s.client(311);
      const buyer = await s.client(312);
      const before = await scrape(s.url);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache("llama-3-8b", 9), price: 1 });
      const middle = await scrape(s.url);
      await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" });
      const after = await scrape(s.url);
      const bytes = (text: string, direction: string) => counter(text, "memory_exchange_payload_bytes_total", { direction });
      // 2 tensors × 48 float64 values, plus the safetensors header.
      expect(bytes(middle, "in") - bytes(before, "in")).toBeGreaterThan(2 * 48 * 8);
      expect(bytes(after, "out") - bytes(middle, "out")).toBe(bytes(middle, "in") - bytes(before, "in"));
    });

    it("labels HTTP requests by route pattern (tRPC procedure) and status, never by raw URL", async () => {
      const buyer = await s.client(321);
      const before = await scrape(s.url);
      await buyer.stats.get.query();
      await fetch(`${s.url}/trpc/stats.get`); // no key: 401
      await fetch(`${s.url}/no/such/path/12345`);
      await fetch(`${s.url}/trpc/not.a.procedure`);
      const after = await scrape(s.url);
      const delta = (labels: Record<string, string>) =>
        counter(after, "http_requests_total", labels) - counter(before, "http_requests_total", labels);
      expect(delta({ method: "GET", route: "/trpc/stats.get", status_code: "200" })).toBe(1);
      expect(delta({ method: "GET", route: "/trpc/stats.get", status_code: "401" })).toBe(1);
      expect(delta({ method: "GET", route: "unmatched", status_code: "404" })).toBe(1);
      expect(delta({ method: "GET", route: "/trpc/:path", status_code: "404" })).toBe(1);
      expect(sample(after, "http_request_duration_seconds_count", { route: "/trpc/stats.get", status_code: "200" })).toBe(
        sample(after, "http_requests_total", { route: "/trpc/stats.get", status_code: "200" }),
      );
      expect(after).not.toContain("12345");
      expect(after).not.toContain("not.a.procedure");
    });

    it.runIf(dialect === "mysql")("reports the pool: connections in use and requests waiting while it is saturated", async () => {
      if (s.server.database.dialect !== "mysql") return;
      const pool = s.server.database.pool;
      const size = s.config.database.dialect === "mysql" ? s.config.database.poolSize : 0;
      const sleeping = Array.from({ length: size + 3 }, () => pool.query("SELECT SLEEP(1)"));
      // Wait until every connection is checked out and the rest are queued (no timing assumptions).
      let text = "";
      for (let i = 0; i < 200; i++) {
        text = (await s.server.app.inject("/metrics")).body;
        if (sample(text, "memory_exchange_db_pool_waiting") === 3) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(sample(text, "memory_exchange_db_pool_in_use")).toBe(size);
      expect(sample(text, "memory_exchange_db_pool_waiting")).toBe(3);
      expect(sample(text, "memory_exchange_db_pool_idle")).toBe(0);
      await Promise.all(sleeping);
      const idle = (await s.server.app.inject("/metrics")).body;
      expect(sample(idle, "memory_exchange_db_pool_in_use")).toBe(0);
      expect(sample(idle, "memory_exchange_db_pool_waiting")).toBe(0);
      expect(sample(idle, "memory_exchange_db_pool_idle")).toBe(size);
    });
  });

  describe(`MEMORY_EXCHANGE_METRICS_PORT on ${dialect}`, () => {
    let s: TestServer;
    let opsUrl: string;
    beforeAll(async () => {
      const port = await freePort();
      s = await startTestServer(dialect, { MEMORY_EXCHANGE_METRICS_PORT: String(port) });
      opsUrl = `http://127.0.0.1:${port}`;
    });
    afterAll(() => s.close());

    it("moves /metrics to the ops port, which also answers /ready and /health; the main port keeps /ready", async () => {
      expect((await fetch(`${s.url}/metrics`)).status).toBe(404);
      expect((await fetch(`${s.url}/ready`)).status).toBe(200);
      const text = await scrape(opsUrl);
      expect(metricType(text, "http_requests_total")).toBe("counter");
      // Requests to the main port are what the histogram measures.
      expect(sample(text, "http_requests_total", { route: "/ready", status_code: "200" })).toBeGreaterThanOrEqual(1);
      const ready = await fetch(`${opsUrl}/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ success: true, data: { status: "ready" } });
      expect((await fetch(`${opsUrl}/health`)).status).toBe(200);
      expect((await fetch(`${opsUrl}/trpc/stats.get`)).status).toBe(404);
      expect((await fetch(`${opsUrl}/metrics`, { method: "POST" })).status).toBe(405);
    });
  });
}
