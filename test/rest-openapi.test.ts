import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addOpenApiPaths, buildOpenApiDocument } from "../packages/server/src/http/rest/openapi.js";
import { restOperations } from "../packages/server/src/http/rest/rest-operations.js";
import { REST_BASE, REST_ROUTES } from "../packages/server/src/http/rest/route-table.js";
import { kvCache } from "./support/fixtures.js";
import { restClient, type RestResponse } from "./support/rest-client.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

// The document does not depend on the database: one dialect is enough.
describe("OpenAPI document and /docs", () => {
  let s: TestServer;
  let document: any;
  beforeAll(async () => {
    // Compiling the OpenAPI meta-schema blocks this process's event loop (the server's too) for about a second:
    // no load shedding here, or the next requests would get 503 OVERLOADED.
    s = await startTestServer("sqlite", { MEMORY_EXCHANGE_MAX_EVENT_LOOP_DELAY_MS: "0" });
    const response = await fetch(`${s.url}/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    document = await response.json();
  });
  afterAll(() => s.close());

  it("validates as OpenAPI 3.1", async () => {
    const validator = new Validator();
    const result = await validator.validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    expect(document.openapi).toBe("3.1.0");
    // the validator does reject a broken document
    const broken = await new Validator().validate({ ...document, paths: { "/x": { get: { responses: { 200: {} } } } } });
    expect(broken.valid).toBe(false);
  });

  it("lists every route of the route table, plus /health", () => {
    const listed = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const expected = [
      "GET /health",
      ...REST_ROUTES.map((r) => `${r.method} ${REST_BASE}${r.path.replace(/:(\w+)/g, "{$1}")}`),
      // the binary payload routes, documented through addOpenApiPaths
      "PUT /api/v1/payloads",
      "GET /api/v1/memory/{id}/payload",
      "GET /api/v1/reasoning-chain/{id}/payload",
    ];
    expect(listed.sort()).toEqual(expected.sort());
    for (const route of [
      "POST /api/v1/memory/publish",
      "POST /api/v1/memory/purchase",
      "GET /api/v1/memory/browse",
      "GET /api/v1/memory/my-history",
      "GET /api/v1/memory/{id}",
      "POST /api/v1/reasoning-chain/publish",
      "POST /api/v1/reasoning-chain/use",
      "GET /api/v1/reasoning-chain/browse",
      "GET /api/v1/stats",
    ])
      expect(listed).toContain(route);
  });

  it("documents auth, the error envelope and snake_case fields with untouched payload docs", () => {
    expect(document.components.securitySchemes).toEqual({
      bearerAuth: expect.objectContaining({ type: "http", scheme: "bearer" }),
      apiKeyHeader: expect.objectContaining({ type: "apiKey", in: "header", name: "X-API-Key" }),
    });
    expect(document.security).toEqual([{ bearerAuth: [] }, { apiKeyHeader: [] }]);
    expect(document.paths["/health"].get.security).toEqual([]);
    expect(document.components.schemas.ErrorEnvelope.required).toEqual(["success", "error", "code"]);

    const publish = document.paths["/api/v1/memory/publish"].post;
    const body = publish.requestBody.content["application/json"].schema;
    expect(Object.keys(body.properties)).toEqual(expect.arrayContaining(["memory_type", "kv_cache_data", "price", "description"]));
    expect(body.required).toEqual(expect.arrayContaining(["memory_type", "price"]));
    expect(body.properties.kv_cache_data).toEqual({ $ref: "#/components/schemas/KvCacheDocument" });
    expect(document.components.schemas.KvCacheDocument.required).toEqual(["sourceModel", "keys", "values"]);
    expect(publish.responses["201"].content["application/json"].schema.properties.data.properties).toHaveProperty("memory_id");
    for (const status of ["400", "401", "403"])
      expect(publish.responses[status]).toEqual({ $ref: expect.stringMatching(/^#\/components\/responses\//) });

    const browse = document.paths["/api/v1/reasoning-chain/browse"].get;
    const names = browse.parameters.map((p: { name?: string; $ref?: string }) => p.name ?? p.$ref);
    expect(names).toEqual(expect.arrayContaining(["category", "chain_type", "source_model", "min_price", "max_price", "limit", "offset", "cursor"]));
    const limit = browse.parameters.find((p: { name?: string }) => p.name === "limit");
    expect(limit.schema).toMatchObject({ type: "integer", minimum: 1, maximum: 100, default: 20 });
    const history = document.paths["/api/v1/memory/my-history"].get.parameters.find((p: { name?: string }) => p.name === "role");
    expect(history.schema).toMatchObject({ enum: ["buyer", "seller", "both"], default: "both" });

    const listing = document.paths["/api/v1/memory/browse"].get.responses["200"].content["application/json"].schema.properties.data
      .properties.memories.items;
    expect(listing.properties.created_at).toEqual({ type: "string", format: "date-time" });
    expect(Object.keys(listing.properties).every((k: string) => /^[a-z0-9_]+$/.test(k))).toBe(true);
  });

  it("takes hand-written path items for routes outside the route table", async () => {
    const payloadPath = {
      get: {
        operationId: "downloadPayload",
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "integer" } }],
        responses: { 200: { description: "safetensors bytes" }, 404: { $ref: "#/components/responses/NotFound" } },
      },
    };
    const built = buildOpenApiDocument(restOperations(), { version: "test", extraPaths: { "/api/v1/memory/{id}/payload": payloadPath } });
    addOpenApiPaths(built, { "/api/v1/payloads": { put: { operationId: "uploadPayload", responses: { 201: { description: "stored" } } } } });
    expect(built.paths["/api/v1/memory/{id}/payload"]).toEqual(payloadPath);
    expect(Object.keys(built.paths["/api/v1/payloads"]!)).toEqual(["put"]);
    expect((await new Validator().validate(built)).valid).toBe(true);
    // the served document is the decorated one, so other modules can add to it at startup
    expect(s.server.app.openApiDocument.paths["/api/v1/stats"]).toEqual(document.paths["/api/v1/stats"]);
  });

  it("serves a browsable Swagger UI at /docs with its assets, offline", async () => {
    const page = await fetch(`${s.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toContain('id="swagger-ui"');
    const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    for (const src of scripts) {
      expect(src.startsWith("http")).toBe(false); // no CDN
      const asset = await fetch(new URL(src, `${s.url}/docs/`));
      expect(asset.status, src).toBe(200);
      expect(asset.headers.get("content-type"), src).toContain("javascript");
      expect((await asset.text()).length, src).toBeGreaterThan(0);
    }
    const spec = await fetch(`${s.url}/docs/json`);
    expect(await spec.json()).toEqual(document);
  });
});

describe("CORS (MEMORY_EXCHANGE_CORS_ORIGINS)", () => {
  const preflight = (url: string, origin: string) =>
    fetch(`${url}/api/v1/memory/publish`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });

  it("is off by default", async () => {
    const s = await startTestServer("sqlite");
    try {
      const response = await fetch(`${s.url}/health`, { headers: { origin: "http://app.example" } });
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await s.close();
    }
  });

  it("allows only the configured origins", async () => {
    const s = await startTestServer("sqlite", { MEMORY_EXCHANGE_CORS_ORIGINS: "http://app.example, http://admin.example" });
    try {
      const allowed = await preflight(s.url, "http://app.example");
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get("access-control-allow-origin")).toBe("http://app.example");
      const denied = await preflight(s.url, "http://evil.example");
      expect(denied.headers.get("access-control-allow-origin")).toBeNull();
      const simple = await fetch(`${s.url}/api/v1/stats`, { headers: { origin: "http://admin.example" } });
      expect(simple.status).toBe(401);
      expect(simple.headers.get("access-control-allow-origin")).toBe("http://admin.example");
      expect(simple.headers.get("access-control-expose-headers")).toContain("x-request-id");
    } finally {
      await s.close();
    }
  });

  it("allows any origin with *", async () => {
    const s = await startTestServer("sqlite", { MEMORY_EXCHANGE_CORS_ORIGINS: "*" });
    try {
      expect((await preflight(s.url, "http://anything.example")).headers.get("access-control-allow-origin")).toBe("*");
    } finally {
      await s.close();
    }
  });
});

/** Every documented response schema, checked against what the server really sends. */
for (const dialect of await testDialects()) {
  describe(`REST responses conform to /openapi.json (${dialect})`, () => {
    let s: TestServer;
    let rest: ReturnType<typeof restClient>;
    let conforms: (method: string, path: string, response: RestResponse) => void;
    let exampleErrors: () => { path: string; method: string; errors: unknown }[];
    beforeAll(async () => {
      s = await startTestServer(dialect, { MEMORY_EXCHANGE_MAX_EVENT_LOOP_DELAY_MS: "0" });
      rest = restClient(s.url);
      const document: any = await (await fetch(`${s.url}/openapi.json`)).json();
      const ajv = new Ajv2020({ strict: false, allErrors: true });
      addFormats.default(ajv);
      ajv.addSchema({ ...document, $id: "openapi.json" });
      const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");
      conforms = (method, path, response) => {
        const responseDoc = document.paths[path][method.toLowerCase()].responses[String(response.status)];
        expect(responseDoc, `${method} ${path} does not document ${response.status}`).toBeDefined();
        const where = responseDoc.$ref
          ? `openapi.json${responseDoc.$ref}/content/application~1json/schema`
          : `openapi.json#/${pointer("paths", path, method.toLowerCase(), "responses", String(response.status), "content", "application/json", "schema")}`;
        const validate = ajv.getSchema(where) ?? ajv.compile({ $ref: where });
        expect(validate(response.body) ? [] : validate.errors, `${method} ${path} ${response.status}`).toEqual([]);
      };
      exampleErrors = () =>
        Object.entries(document.paths as Record<string, Record<string, { requestBody?: { content: Record<string, { example?: unknown }> } }>>).flatMap(
          ([path, item]) =>
            Object.entries(item).flatMap(([method, op]) => {
              const media = op.requestBody?.content["application/json"];
              if (media?.example === undefined) return [];
              const validate = ajv.compile({ $ref: `openapi.json#/${pointer("paths", path, method, "requestBody", "content", "application/json", "schema")}` });
              return [{ path, method, errors: validate(media.example) ? null : validate.errors }];
            }),
        );
    });
    afterAll(() => s.close());

    it("request examples shown by /docs match their schemas", () => {
      const checked = exampleErrors();
      const withExamples = REST_ROUTES.filter((r) => r.example).map((r) => `${r.method.toLowerCase()} ${REST_BASE}${r.path}`);
      expect(withExamples).toEqual(expect.arrayContaining(["post /api/v1/memory/publish", "post /api/v1/reasoning-chain/use"]));
      expect(checked.map((c) => `${c.method} ${c.path}`)).toEqual(expect.arrayContaining(withExamples));
      expect(checked.filter((c) => c.errors)).toEqual([]);
    });

    it("success and error bodies match their documented schemas", async () => {
      const seller = await s.createKey(11);
      const buyer = await s.createKey(12);
      const payload = kvCache("gpt-4");

      const published = await rest("POST", "/api/v1/memory/publish", { key: seller, body: { memory_type: "kv_cache", kv_cache_data: payload, price: 9.99 } });
      conforms("POST", "/api/v1/memory/publish", published);
      const memoryId = published.body.data.memory_id;
      conforms("GET", "/api/v1/memory/browse", await rest("GET", "/api/v1/memory/browse?limit=5", { key: buyer }));
      conforms("GET", "/api/v1/memory/{id}", await rest("GET", `/api/v1/memory/${memoryId}`, { key: buyer }));
      conforms("POST", "/api/v1/memory/purchase", await rest("POST", "/api/v1/memory/purchase", { key: buyer, body: { memory_id: memoryId, target_model: "gpt-4" } }));
      conforms("GET", "/api/v1/memory/{id}", await rest("GET", `/api/v1/memory/${memoryId}`, { key: buyer }));
      conforms("GET", "/api/v1/memory/my-history", await rest("GET", "/api/v1/memory/my-history", { key: buyer }));

      const chain = await rest("POST", "/api/v1/reasoning-chain/publish", {
        key: seller,
        body: { chain_name: "c", description: "d", category: "finance", kv_cache_snapshot: payload, source_model: "gpt-4", price_per_use: 1, step_count: 3 },
      });
      conforms("POST", "/api/v1/reasoning-chain/publish", chain);
      const chainId = chain.body.data.chain_id;
      conforms("POST", "/api/v1/reasoning-chain/use", await rest("POST", "/api/v1/reasoning-chain/use", { key: buyer, body: { chain_id: chainId, input_data: { q: 1 }, target_model: "llama-3-8b" } }));
      conforms("GET", "/api/v1/reasoning-chain/browse", await rest("GET", "/api/v1/reasoning-chain/browse?chain_type=finance", { key: buyer }));
      conforms("GET", "/api/v1/reasoning-chain/{id}", await rest("GET", `/api/v1/reasoning-chain/${chainId}`, { key: buyer }));
      conforms("GET", "/api/v1/stats", await rest("GET", "/api/v1/stats", { key: buyer }));
      conforms("GET", "/health", await rest("GET", "/health"));

      conforms("POST", "/api/v1/memory/publish", await rest("POST", "/api/v1/memory/publish", { key: seller, body: { price: "x" } }));
      conforms("GET", "/api/v1/stats", await rest("GET", "/api/v1/stats"));
      conforms("POST", "/api/v1/memory/purchase", await rest("POST", "/api/v1/memory/purchase", { key: buyer, body: { memory_id: 424242, target_model: "gpt-4" } }));
      conforms("POST", "/api/v1/memory/purchase", await rest("POST", "/api/v1/memory/purchase", { key: seller, body: { memory_id: memoryId, target_model: "gpt-4" } }));
    });
  });
}
