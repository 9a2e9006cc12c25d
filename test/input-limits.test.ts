import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kvCache } from "./support/fixtures.js";
import { bearer, postText, trpcMutation, type RawResponse } from "./support/raw-http.js";
import { tableCounts } from "./support/rows.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/**
 * Guarantee 3: every input limit answers a clear 400/413 naming the field and
 * writes nothing; values exactly at a limit are accepted and stored (on
 * MariaDB too, where a column that is too small would fail the INSERT).
 */
const TABLES = ["memory_exchanges", "reasoning_chains", "mx_payloads", "mx_payload_chunks", "mx_payload_owners"];

const chainInput = (over: Record<string, unknown> = {}) => ({
  chainName: "limits",
  description: "a chain at the limits",
  category: "test",
  kvCacheSnapshot: kvCache("llama-3-8b", 5),
  sourceModel: "llama-3-8b",
  pricePerUse: 1,
  ...over,
});
const memoryInput = (over: Record<string, unknown> = {}) => ({ memoryType: "kv_cache", kvCacheData: kvCache(), price: 1, ...over });

/** The envelope (REST, or a failure before tRPC runs) or the tRPC error shape, reduced to what tests check. */
function failure(r: RawResponse): { status: number; code: string; paths: string[]; message: string } {
  const body = r.json as Record<string, any>;
  if (body?.success === false) return { status: r.status, code: body.code, paths: (body.details ?? []).map((d: any) => d.path), message: body.error };
  const error = body?.error?.json;
  return { status: r.status, code: error?.data?.code, paths: (error?.data?.details ?? []).map((d: any) => d.path), message: error?.message };
}

/** Sends a request; after it, no row may have been written. */
async function rejected(s: TestServer, send: () => Promise<RawResponse>) {
  const before = await tableCounts(s.server, TABLES);
  const r = await send();
  expect(await tableCounts(s.server, TABLES)).toEqual(before);
  return failure(r);
}

/** Headers only, with a huge Content-Length: the answer must come before any body byte is sent. */
function headersOnly(url: string, path: string, contentLength: number): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n`);
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
  describe(`input limits (${dialect})`, () => {
    let s: TestServer;
    let key: string;
    let memoryId: number;
    let chainId: number;
    const mutate = (path: string, input: unknown) => trpcMutation(s.url, path, input, bearer(key));

    beforeAll(async () => {
      s = await startTestServer(dialect, { MEMORY_EXCHANGE_BODY_LIMIT_MB: "1" });
      key = await s.createKey(81);
      const seller = await s.client(80);
      ({ memoryId } = await seller.memory.publish.mutate(memoryInput() as never));
      ({ chainId } = await seller.reasoningChain.publish.mutate(chainInput() as never));
    });
    afterAll(() => s?.close());

    describe("body size", () => {
      it("a body over MEMORY_EXCHANGE_BODY_LIMIT_MB → 413 PAYLOAD_TOO_LARGE", async () => {
        const big = JSON.stringify({ json: memoryInput({ description: "x".repeat(1024 * 1024) }) });
        for (const path of ["/trpc/memory.publish", "/api/v1/memory/publish"]) {
          const r = await rejected(s, () => postText(s.url, path, big, bearer(key)));
          expect(r).toMatchObject({ status: 413, code: "PAYLOAD_TOO_LARGE" });
        }
      });

      it("is decided from Content-Length before the body is read", async () => {
        for (const path of ["/trpc/memory.publish", "/api/v1/memory/publish"]) {
          const response = await headersOnly(s.url, path, 10 * 1024 * 1024 * 1024);
          expect(response).toMatch(/^HTTP\/1\.1 413 /);
          expect(response).toContain('"code":"PAYLOAD_TOO_LARGE"');
        }
      });
    });

    describe("tensors", () => {
      it("over the element limit → 413 naming the tensor, before decoding", async () => {
        const huge = { dtype: "float32", shape: [5000, 5000], data: "AAAA" };
        const r = await rejected(s, () => mutate("memory.publish", memoryInput({ kvCacheData: { sourceModel: "m", keys: huge, values: huge } })));
        expect(r).toMatchObject({ status: 413, code: "PAYLOAD_TOO_LARGE" });
        expect(r.paths).toContain("kvCacheData.keys.shape");
      });

      it("rank over 4 → 400 naming the tensor", async () => {
        const deep = [[[[[1, 2]]]]];
        const r = await rejected(s, () => mutate("memory.publish", memoryInput({ kvCacheData: { sourceModel: "m", keys: deep, values: deep } })));
        expect(r.status).toBe(400);
        expect(r.paths.some((p) => p.startsWith("kvCacheData.keys"))).toBe(true);
      });

      it("1e400 (parses to Infinity) inside a tensor → 400 naming the element", async () => {
        const body = JSON.stringify({ json: memoryInput({ kvCacheData: { sourceModel: "m", keys: [[0.5, 7]], values: [[1, 2]] } }) }).replace(
          "[[0.5,7]]",
          "[[0.5,1e400]]",
        );
        const r = await rejected(s, () => postText(s.url, "/trpc/memory.publish", body, bearer(key)));
        expect(r).toMatchObject({ status: 400, code: "INVALID_INPUT" });
        expect(r.paths).toContain("kvCacheData.keys.0.1");
      });

      it("NaN and -Infinity smuggled through superjson → 400", async () => {
        const body = JSON.stringify({
          json: { ...memoryInput({ kvCacheData: { sourceModel: "m", keys: [["NaN", 1]], values: [[1, "-Infinity"]] } }) },
          meta: { values: { "kvCacheData.keys.0.0": ["number"], "kvCacheData.values.0.1": ["number"] } },
        });
        const r = await rejected(s, () => postText(s.url, "/trpc/memory.publish", body, bearer(key)));
        expect(r).toMatchObject({ status: 400, code: "INVALID_INPUT" });
        expect(r.paths.some((p) => p.startsWith("kvCacheData.keys"))).toBe(true);
      });

      it("ragged, empty, string elements and mismatched shapes → 400", async () => {
        for (const [keys, values] of [
          [[[1, 2], [3]], [[1, 2], [3, 4]]],
          [[], []],
          [[["1", 2]], [[1, 2]]],
          [[[1, 2]], [[1, 2, 3]]],
        ]) {
          const r = await rejected(s, () => mutate("memory.publish", memoryInput({ kvCacheData: { sourceModel: "m", keys, values } })));
          expect(r).toMatchObject({ status: 400, code: "INVALID_INPUT" });
        }
      });
    });

    describe("numbers", () => {
      it("price: > 0, at most 2 decimals, within DECIMAL(10,2), a finite number", async () => {
        for (const price of [0, -1, 1.001, 100_000_000, "5", null]) {
          const r = await rejected(s, () => mutate("memory.publish", memoryInput({ price })));
          expect(r, `price ${price}`).toMatchObject({ status: 400, code: "INVALID_INPUT", paths: ["price"] });
        }
        const body = JSON.stringify({ json: memoryInput({ price: 7 }) }).replace('"price":7', '"price":1e400');
        const r = await rejected(s, () => postText(s.url, "/trpc/memory.publish", body, bearer(key)));
        expect(r).toMatchObject({ status: 400, paths: ["price"] });
        const chain = await rejected(s, () => mutate("reasoningChain.publish", chainInput({ pricePerUse: 0.001 })));
        expect(chain).toMatchObject({ status: 400, paths: ["pricePerUse"] });
      });

      it("the largest DECIMAL(10,2) price is stored exactly", async () => {
        const r = await mutate("memory.publish", memoryInput({ price: 99_999_999.99 }));
        expect(r.status).toBe(200);
      });

      it("ids are positive integers that fit INT", async () => {
        for (const id of [0, -1, 1.5, "1", 2 ** 31, 1e400]) {
          const body = JSON.stringify({ json: { memoryId: id === 1e400 ? 7 : id, targetModel: "m" } }).replace('"memoryId":7', '"memoryId":1e400');
          const r = await rejected(s, () => postText(s.url, "/trpc/memory.purchase", body, bearer(key)));
          expect(r, `memoryId ${id}`).toMatchObject({ status: 400, code: "INVALID_INPUT", paths: ["memoryId"] });
        }
        const r = await rejected(s, () => mutate("reasoningChain.use", { chainId: -3, inputData: {}, targetModel: "m" }));
        expect(r).toMatchObject({ status: 400, paths: ["chainId"] });
      });
    });

    describe("strings fit their columns", () => {
      const cases: [string, string, Record<string, unknown>, string][] = [
        ["source_model > 50", "memory.publish", memoryInput({ kvCacheData: kvCache("m".repeat(51)) }), "kvCacheData.sourceModel"],
        ["description > 10,000", "memory.publish", memoryInput({ description: "d".repeat(10_001) }), "description"],
        ["chain_name > 255", "reasoningChain.publish", chainInput({ chainName: "n".repeat(256) }), "chainName"],
        ["category > 100", "reasoningChain.publish", chainInput({ category: "c".repeat(101) }), "category"],
        ["chain source_model > 50", "reasoningChain.publish", chainInput({ sourceModel: "m".repeat(51) }), "sourceModel"],
        ["chain description > 10,000", "reasoningChain.publish", chainInput({ description: "d".repeat(10_001) }), "description"],
      ];
      for (const [name, path, input, field] of cases) {
        it(`${name} → 400 naming ${field}`, async () => {
          const r = await rejected(s, () => mutate(path, input));
          expect(r).toMatchObject({ status: 400, code: "INVALID_INPUT" });
          expect(r.paths).toContain(field);
        });
      }

      it("target_model > 50 → 400", async () => {
        const purchase = await rejected(s, () => mutate("memory.purchase", { memoryId, targetModel: "t".repeat(51) }));
        expect(purchase).toMatchObject({ status: 400, paths: ["targetModel"] });
        const use = await rejected(s, () => mutate("reasoningChain.use", { chainId, inputData: {}, targetModel: "t".repeat(51) }));
        expect(use).toMatchObject({ status: 400, paths: ["targetModel"] });
      });

      it("values exactly at the limits are accepted and stored, multi-byte characters included", async () => {
        const r = await mutate(
          "reasoningChain.publish",
          chainInput({
            chainName: "é".repeat(255),
            category: "ü".repeat(100),
            description: "😀".repeat(5_000),
            sourceModel: "m".repeat(50),
            kvCacheSnapshot: kvCache("m".repeat(50), 6),
          }),
        );
        expect(r.status, r.text.slice(0, 300)).toBe(200);
        const m = await mutate("memory.publish", memoryInput({ description: "ß".repeat(10_000), kvCacheData: kvCache("m".repeat(50), 7) }));
        expect(m.status, m.text.slice(0, 300)).toBe(200);
      });
    });

    describe("JSON fields", () => {
      /** A JSON object whose serialization is exactly `bytes` long. */
      const objectOfSize = (bytes: number) => ({ pad: "x".repeat(bytes - '{"pad":""}'.length) });

      it("input_example / output_example at the limit are stored; one byte over → 413 naming the field", async () => {
        const limit = 65_535;
        expect(JSON.stringify(objectOfSize(limit)).length).toBe(limit);
        const ok = await mutate("reasoningChain.publish", chainInput({ inputExample: objectOfSize(limit), outputExample: objectOfSize(limit) }));
        expect(ok.status, ok.text.slice(0, 300)).toBe(200);
        for (const field of ["inputExample", "outputExample"]) {
          const r = await rejected(s, () => mutate("reasoningChain.publish", chainInput({ [field]: objectOfSize(limit + 1) })));
          expect(r).toMatchObject({ status: 413, code: "PAYLOAD_TOO_LARGE", paths: [field] });
        }
      });

      it("input_data must be a JSON object of bounded size", async () => {
        for (const inputData of [[1, 2], "text", 5, null]) {
          const r = await rejected(s, () => mutate("reasoningChain.use", { chainId, inputData, targetModel: "m" }));
          expect(r, JSON.stringify(inputData)).toMatchObject({ status: 400, paths: ["inputData"] });
        }
        const r = await rejected(s, () => mutate("reasoningChain.use", { chainId, inputData: objectOfSize(65_536), targetModel: "m" }));
        expect(r).toMatchObject({ status: 413, code: "PAYLOAD_TOO_LARGE", paths: ["inputData"] });
      });
    });

    describe("REST names the snake_case field", () => {
      it("chain_name too long, price with 3 decimals", async () => {
        const body = {
          chain_name: "n".repeat(256),
          description: "d",
          category: "c",
          kv_cache_snapshot: kvCache(),
          source_model: "llama-3-8b",
          price_per_use: 1.005,
        };
        const r = await rejected(s, () => postText(s.url, "/api/v1/reasoning-chain/publish", JSON.stringify(body), bearer(key)));
        expect(r).toMatchObject({ status: 400, code: "INVALID_INPUT" });
        expect(r.paths).toEqual(expect.arrayContaining(["chain_name", "price_per_use"]));
      });
    });
  });
}
