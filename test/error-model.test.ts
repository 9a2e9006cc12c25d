import { connect } from "node:net";
import { ERROR_CODES, ERROR_STATUS } from "@memory-exchange/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkErrorResponse } from "./support/error-shape.js";
import { kvCache } from "./support/fixtures.js";
import { bearer, rawRequest, type RawResponse } from "./support/raw-http.js";
import { execute } from "./support/rows.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/**
 * Guarantee 4: one closed set of codes, every failure is the envelope (or
 * tRPC's error shape carrying the same code), unknown failures are a 500
 * with a request id and no internal text.
 */

/** Sends raw bytes and parses the (single, non-chunked or chunked) response. */
function rawHttp(url: string, request: string): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    // write, not end: a half-closed socket may be dropped before an async answer is ready
    const socket = connect(Number(port), hostname, () => socket.write(request));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const [head = "", ...rest] = text.split("\r\n\r\n");
      let body = rest.join("\r\n\r\n");
      if (/transfer-encoding: chunked/i.test(head)) body = body.replace(/^[0-9a-f]+\r\n/gim, "").replace(/\r\n/g, "");
      const headers = new Headers();
      for (const line of head.split("\r\n").slice(1)) {
        const i = line.indexOf(":");
        if (i > 0) headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
      }
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(head.split(" ")[1]), headers, text: body, json });
    });
  });
}

const post = (path: string, body: string, headers: Record<string, string>, contentType = "application/json") =>
  `POST ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}Content-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

it("the closed set maps every code to one status", () => {
  expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
  for (const code of ERROR_CODES) expect([400, 401, 403, 404, 409, 413, 415, 416, 422, 429, 500, 503]).toContain(ERROR_STATUS[code]);
});

for (const dialect of await testDialects()) {
  describe(`error model (${dialect})`, () => {
    let s: TestServer;
    let key: string;
    beforeAll(async () => {
      s = await startTestServer(dialect);
      key = await s.createKey(90);
    });
    afterAll(() => s?.close());

    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const malformed: [string, () => string, number][] = [
      ["malformed URL", () => `GET /%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 400],
      ["malformed URL under /trpc", () => `GET /trpc/%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 400],
      ["garbage instead of HTTP", () => `HELLO THERE\r\n\r\n`, 400],
      ["headers too large", () => `GET /health HTTP/1.1\r\nHost: t\r\nX-Big: ${"a".repeat(100_000)}\r\n\r\n`, 413],
      ["Content-Length not a number", () => `POST /api/v1/memory/purchase HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n{}`, 400],
      ["unknown route", () => `GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 404],
      ["unknown procedure", () => post("/trpc/nope.nope", "{}", bearer(key)), 404],
      ["REST: invalid JSON", () => post("/api/v1/memory/purchase", "{x}", bearer(key)), 400],
      ["REST: __proto__ key", () => post("/api/v1/memory/purchase", '{"__proto__":{"a":1}}', bearer(key)), 400],
      ["REST: empty body", () => post("/api/v1/memory/purchase", "", bearer(key)), 400],
      ["REST: text/plain", () => post("/api/v1/memory/purchase", "{}", bearer(key), "text/plain"), 400],
      ["REST: no Content-Type", () => `POST /api/v1/memory/purchase HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer ${key}\r\nContent-Length: 2\r\n\r\n{}`, 415],
      ["REST: deep nesting", () => post("/api/v1/memory/publish", `{"description":${deep}}`, bearer(key)), 400],
      ["tRPC: invalid JSON", () => post("/trpc/memory.publish", "{x}", bearer(key)), 400],
      ["tRPC: JSON null", () => post("/trpc/memory.purchase", "null", bearer(key)), 400],
      ["tRPC: text/plain", () => post("/trpc/memory.publish", "{}", bearer(key), "text/plain"), 415],
      ["tRPC: superjson __proto__ path", () => post("/trpc/memory.publish", '{"json":{"a":{}},"meta":{"values":{"__proto__.x":["set"]}}}', bearer(key)), 400],
      ["tRPC: superjson unknown class", () => post("/trpc/memory.publish", '{"json":{"a":1},"meta":{"values":{"a":[["class","X"]]}}}', bearer(key)), 400],
      ["tRPC: superjson bad bigint", () => post("/trpc/memory.purchase", '{"json":{"memoryId":"zz"},"meta":{"values":{"memoryId":["bigint"]}}}', bearer(key)), 400],
      ["tRPC: deep nesting", () => post("/trpc/memory.publish", `{"json":${deep}}`, bearer(key)), 400],
      ["tRPC: GET on a mutation", () => `GET /trpc/memory.publish HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer ${key}\r\n\r\n`, 400],
      ["tRPC: bad batch input", () => `GET /trpc/memory.browse?batch=1&input=%7Bbad HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer ${key}\r\n\r\n`, 400],
      ["no API key", () => post("/trpc/memory.purchase", '{"json":{"memoryId":1,"targetModel":"m"}}', {}), 401],
      ["unknown API key", () => post("/api/v1/memory/purchase", '{"memory_id":1,"target_model":"m"}', bearer("mx_nope")), 401],
    ];
    for (const [name, request, status] of malformed) {
      it(`${name} → ${status}, the envelope, nothing internal`, async () => {
        const r = await rawHttp(s.url, request());
        expect(r.status, r.text.slice(0, 300)).toBe(status);
        checkErrorResponse(r);
      });
    }

    it("the process is alive after all of it", async () => {
      const r = await rawRequest(`${s.url}/health`);
      expect(r.status).toBe(200);
    });

    describe("an unknown failure", () => {
      let broken: TestServer;
      beforeAll(async () => {
        broken = await startTestServer(dialect);
        const client = await broken.client(91);
        await client.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache(), price: 1 });
        // Break the schema under the running server: queries now fail in ways no rule anticipates.
        await execute(broken.server, "DROP TABLE memory_exchanges");
      });
      afterAll(() => broken?.close());

      it("is a 500 INTERNAL with a request id and no SQL, driver text, stack or path (tRPC and REST)", async () => {
        const brokenKey = await broken.createKey(92);
        const responses = [
          await rawRequest(`${broken.url}/trpc/memory.browse?input=${encodeURIComponent(JSON.stringify({ json: {} }))}`, { headers: bearer(brokenKey) }),
          await rawRequest(`${broken.url}/api/v1/memory/browse`, { headers: bearer(brokenKey) }),
          await rawRequest(`${broken.url}/api/v1/stats`, { headers: { ...bearer(brokenKey), "x-request-id": "trace-me-42" } }),
        ];
        for (const r of responses) {
          expect(r.status).toBe(500);
          expect(checkErrorResponse(r)).toBe("INTERNAL");
        }
        // A caller's request id is echoed, so the 500 can be found in the log.
        expect(responses[2]!.headers.get("x-request-id")).toBe("trace-me-42");
        expect(responses[2]!.json).toMatchObject({ request_id: "trace-me-42", error: "Internal server error" });
      });
    });
  });
}
