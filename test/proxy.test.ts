import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import express from "express";
import { createProxyMiddleware } from "http-proxy-middleware";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kvCache } from "./support/fixtures.js";
import { restClient } from "./support/rest-client.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

function listen(app: express.Express): Promise<Server> {
  return new Promise((resolve) => {
    const server = app.listen(0, "127.0.0.1", () => resolve(server));
  });
}
const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

/** The main application's Express app, exactly as the seed document integrates the service. */
function seedMainApp(target: string) {
  const app = express();
  // In Express middleware
  app.use('/api/memory-exchange', createProxyMiddleware({
    target,
    changeOrigin: true,
    pathRewrite: {
      '^/api/memory-exchange': '/api/v1'
    }
  }));
  return app;
}

/** The same integration written the http-proxy-middleware 3 way (path filter instead of a mount path). */
function pathFilterMainApp(target: string) {
  const app = express();
  app.use(createProxyMiddleware({ target, changeOrigin: true, pathFilter: "/api/memory-exchange", pathRewrite: { "^/api/memory-exchange": "/api/v1" } }));
  return app;
}

for (const dialect of await testDialects()) {
  describe(`behind the main app's Express proxy (${dialect})`, () => {
    let s: TestServer;
    const proxies: Server[] = [];
    beforeAll(async () => {
      s = await startTestServer(dialect);
    });
    afterAll(async () => {
      for (const proxy of proxies) await new Promise((resolve) => proxy.close(resolve));
      await s.close();
    });

    for (const [name, mainApp] of [
      ["the seed's snippet", seedMainApp],
      ["a pathFilter proxy", pathFilterMainApp],
    ] as const)
      it(`publishes, browses and buys through /api/memory-exchange with ${name}`, async () => {
        const proxy = await listen(mainApp(s.url));
        proxies.push(proxy);
        const rest = restClient(urlOf(proxy));
        const seller = await s.createKey(61);
        const buyer = await s.createKey(62);
        const payload = { ...kvCache("gpt-3.5-turbo"), metadata: { camelCaseKey: 1 } };

        const published = await rest("POST", "/api/memory-exchange/memory/publish", {
          key: seller,
          body: { memory_type: "kv_cache", kv_cache_data: payload, price: 9.99, description: "via proxy" },
        });
        expect(published.status).toBe(201);
        expect(published.body).toEqual({ success: true, data: { memory_id: expect.any(Number), message: "Memory published successfully" } });
        const memoryId = published.body.data.memory_id;

        const browse = await rest("GET", "/api/memory-exchange/memory/browse?memory_type=kv_cache&min_price=5&max_price=50&limit=20", { key: buyer });
        expect(browse.status).toBe(200);
        expect(browse.body.data.memories.map((m: { id: number }) => m.id)).toContain(memoryId);

        const purchase = await rest("POST", "/api/memory-exchange/memory/purchase", { key: buyer, body: { memory_id: memoryId, target_model: "gpt-4" } });
        expect(purchase.status).toBe(200);
        expect(purchase.body.data.memory.kv_cache_data).toEqual(payload);

        const stats = await rest("GET", "/api/memory-exchange/stats", { key: buyer });
        expect(stats.body.success).toBe(true);

        const denied = await rest("GET", "/api/memory-exchange/memory/my-history?role=both&limit=50");
        expect(denied.status).toBe(401);
        expect(denied.body).toMatchObject({ success: false, code: "UNAUTHENTICATED" });
      });
  });
}
