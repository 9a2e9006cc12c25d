import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isMemoryExchangeError, type MemoryExchangeClient } from "@memory-exchange/client";
import {
  buildKvCacheSafetensors,
  buildSafetensors,
  decodeSafetensors,
  encodeBase64,
  encodeFromFloat64,
  safetensorsToKvCache,
  type KvCacheDocument,
} from "@memory-exchange/shared";
import { LEGACY_CHAIN_SNAPSHOT, LEGACY_KV } from "./fixtures/legacy-rows.js";
import { kvCache } from "./support/fixtures.js";
import { execute, queryRows } from "./support/rows.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/**
 * Payloads end to end through real HTTP on both dialects: the compact tensor
 * encoding, the content-addressed chunk store and its deduplication, streamed
 * safetensors upload (`PUT /api/v1/payloads`) and publish by `kvCacheRef`,
 * entitled binary download with ETag and Range, the inline limit, and the
 * older code's inline JSON rows.
 */

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** A compact tensor from float64 values, in the given dtype. */
const encoded = (dtype: "float16" | "bfloat16" | "float32" | "float64", shape: number[], values: number[]) => ({
  dtype,
  shape,
  data: encodeBase64(encodeFromFloat64(dtype, new Float64Array(values))),
});

const ramp = (n: number, scale: number) => Array.from({ length: n }, (_, i) => (i - n / 2) * scale + 1 / 3);

/** A small KV-cache safetensors file made with the SDK's helpers. */
function kvFile(seed: number, extra: { sourceModel?: string; metadata?: Record<string, string> } = {}) {
  const n = 2 * 3 * 4;
  return buildKvCacheSafetensors({
    sourceModel: extra.sourceModel ?? "llama-3-8b",
    keys: { dtype: "bfloat16", shape: [2, 3, 4], data: new Float32Array(ramp(n, 0.5 + seed)) },
    values: { dtype: "float32", shape: [2, 3, 4], data: new Float32Array(ramp(n, -0.25 - seed)) },
    metadata: { tokenCount: "3", ...extra.metadata },
  });
}

/** PUT /api/v1/payloads; `chunked` sends the body as a stream (no Content-Length). */
async function uploadRaw(s: TestServer, key: string, body: Uint8Array | string, headers: Record<string, string> = {}, chunked = false) {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.length > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
  const response = await fetch(`${s.url}/api/v1/payloads`, {
    method: "PUT",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/octet-stream", ...headers },
    body: chunked ? stream : body,
    ...(chunked ? { duplex: "half" } : {}),
  } as RequestInit);
  return { status: response.status, headers: response.headers, json: (await response.json()) as any };
}

async function downloadRaw(s: TestServer, key: string | undefined, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${s.url}${path}`, { headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers } });
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

const count = async (s: TestServer, sql: string, params: unknown[] = []) =>
  Number((await queryRows<{ n: number | string }>(s.server, sql, params))[0]!.n);

/**
 * Chunk rows, payload rows and upload rows, to prove what was (not) written. One
 * statement, so one snapshot: counted one by one, the chunks could be read
 * before an abort deletes them and the upload row after, a state that never existed.
 */
const storeCounts = async (s: TestServer) => {
  const [row] = await queryRows<Record<"payloads" | "chunks" | "uploads", number | string>>(
    s.server,
    "SELECT (SELECT COUNT(*) FROM mx_payloads) AS payloads, (SELECT COUNT(*) FROM mx_payload_chunks) AS chunks, (SELECT COUNT(*) FROM mx_payload_uploads) AS uploads",
  );
  return { payloads: Number(row!.payloads), chunks: Number(row!.chunks), uploads: Number(row!.uploads) };
};

for (const dialect of await testDialects()) {
  describe(`payloads (${dialect})`, () => {
    let s: TestServer;
    let seller: MemoryExchangeClient;
    let buyer: MemoryExchangeClient;
    let stranger: MemoryExchangeClient;
    let sellerKey: string;
    let buyerKey: string;
    let strangerKey: string;

    beforeAll(async () => {
      s = await startTestServer(dialect);
      [sellerKey, buyerKey, strangerKey] = await Promise.all([s.createKey(1), s.createKey(2), s.createKey(3)]);
      [seller, buyer, stranger] = await Promise.all([s.client(1), s.client(2), s.client(3)]);
    });
    afterAll(() => s.close());

    const sell = async (kvCacheData: KvCacheDocument, price = 5) =>
      (await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData, price })).memoryId;

    describe("compact encoding and nested arrays", () => {
      test("nested arrays come back exactly equal, float64 precision kept", async () => {
        const document = kvCache("llama-3-8b", 7);
        const memoryId = await sell(document);
        const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" });
        expect(bought.memory.kvCacheData).toEqual(document);
        expect(Object.keys(bought.memory.kvCacheData!)).toEqual(Object.keys(document));
      });

      test.each(["float16", "bfloat16", "float32", "float64"] as const)("%s tensors come back bit-exact, in the published form", async (dtype) => {
        const shape = [2, 2, 5, 8];
        const n = shape.reduce((a, b) => a * b);
        const document = {
          metadata: { tokenCount: 5 },
          sourceModel: "mistral-7b",
          keys: encoded(dtype, shape, ramp(n, 0.37)),
          values: encoded(dtype, shape, ramp(n, -1.93)),
        };
        const memoryId = await sell(document);
        const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "mistral-7b" });
        expect(bought.memory.kvCacheData).toEqual(document);
        expect(Object.keys(bought.memory.kvCacheData!)).toEqual(["metadata", "sourceModel", "keys", "values"]);
        expect(bought.memory.tokenCount).toBe(5);
        // The binary download is the canonical safetensors form of the same document.
        const file = await (await buyer.payloads.download({ memoryId })).bytes();
        expect(safetensorsToKvCache(file)).toEqual(document);
        expect(decodeSafetensors(file).tensors.keys!.dtype).toBe(dtype);
      });

      test("invalid compact tensors are refused naming the field, nothing stored", async () => {
        const before = await storeCounts(s);
        const bad = [
          { ...kvCache(), keys: { dtype: "int8", shape: [2], data: "AAA=" } },
          { ...kvCache(), keys: { dtype: "float32", shape: [2], data: "not base64!" } },
          { ...kvCache(), keys: { dtype: "float32", shape: [3], data: encodeBase64(new Uint8Array(8)) } },
          { ...kvCache(), keys: encoded("float32", [2], [1, Number.NaN]) },
        ];
        for (const kvCacheData of bad) {
          const error = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData, price: 1 } as never).catch((e: unknown) => e);
          expect(isMemoryExchangeError(error, "INVALID_INPUT")).toBe(true);
          expect((error as { details: { path: string }[] }).details[0]!.path).toMatch(/^kvCacheData\.keys/);
        }
        expect(await storeCounts(s)).toEqual(before);
      });
    });

    describe("content-addressed store", () => {
      test("the same payload published twice (listings and a chain) is stored once", async () => {
        const document = kvCache("llama-3-8b", 11);
        const first = await sell(document);
        const afterFirst = await storeCounts(s);
        const second = await sell(structuredClone(document), 7);
        const { chainId } = await seller.reasoningChain.publish.mutate({
          chainName: "dedupe",
          description: "same snapshot",
          category: "test",
          kvCacheSnapshot: structuredClone(document),
          sourceModel: "llama-3-8b",
          pricePerUse: 1,
        });
        expect(await storeCounts(s)).toEqual(afterFirst);
        const [a, b] = await Promise.all([seller.memory.get.query({ memoryId: first }), seller.memory.get.query({ memoryId: second })]);
        const chain = await seller.reasoningChain.get.query({ chainId });
        expect(a.payloadDigest).toMatch(/^[0-9a-f]{64}$/);
        expect(b.payloadDigest).toBe(a.payloadDigest);
        expect(chain.payloadDigest).toBe(a.payloadDigest);
        expect(await count(s, "SELECT COUNT(*) AS n FROM mx_payloads WHERE digest = ?", [a.payloadDigest])).toBe(1);
      });

      test("payloads over 1 MiB are split into chunk rows of at most 1 MiB", async () => {
        // 2 × 160 000 float64 values: about 2.5 MiB of safetensors.
        const n = 160_000;
        const document = { sourceModel: "big", keys: encoded("float64", [400, n / 400], ramp(n, 1e-3)), values: encoded("float64", [400, n / 400], ramp(n, 2e-3)) };
        const memoryId = await sell(document);
        const { payloadDigest, payloadSize } = await seller.memory.get.query({ memoryId });
        const chunks = await queryRows<{ seq: number; bytes: number | string }>(
          s.server,
          "SELECT seq, LENGTH(data) AS bytes FROM mx_payload_chunks WHERE digest = ? ORDER BY seq",
          [payloadDigest],
        );
        expect(chunks.map((c) => Number(c.bytes))).toEqual([1048576, 1048576, payloadSize! - 2 * 1048576]);
        const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "big" });
        expect(bought.memory.kvCacheData).toEqual(document);
      });
    });

    describe("upload and publish by reference", () => {
      test("an upload answers its SHA-256; publish with kvCacheRef; buyers get the same bytes back", async () => {
        const file = kvFile(1);
        const uploaded = await seller.payloads.upload(file);
        expect(uploaded).toEqual({
          digest: sha256(file),
          size: file.length,
          tensors: { keys: { dtype: "bfloat16", shape: [2, 3, 4] }, values: { dtype: "float32", shape: [2, 3, 4] } },
        });
        const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheRef: uploaded.digest, price: 3 });
        const listing = await seller.memory.get.query({ memoryId });
        expect(listing).toMatchObject({ sourceModel: "llama-3-8b", tokenCount: 3, payloadDigest: uploaded.digest, payloadSize: file.length });

        const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" });
        expect(bought.payloadUrl).toBe(`/api/v1/memory/${memoryId}/payload`);
        // Small enough to inline: the JSON form of an uploaded file has compact tensors and its metadata.
        expect(bought.memory.kvCacheData).toEqual(safetensorsToKvCache(file));
        const download = await buyer.payloads.download({ memoryId });
        expect(download).toMatchObject({ status: 200, digest: uploaded.digest, size: file.length, contentLength: file.length });
        expect(Buffer.compare(await download.bytes(), file)).toBe(0);
      });

      test("a stream body is accepted, and the same bytes uploaded again (by anyone) are stored once", async () => {
        const file = kvFile(2);
        const before = await storeCounts(s);
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let at = 0; at < file.length; at += 7) controller.enqueue(file.slice(at, at + 7));
            controller.close();
          },
        });
        const first = await seller.payloads.upload(stream);
        const again = await uploadRaw(s, buyerKey, file);
        expect(again.status).toBe(200); // 201 the first time, 200 when the bytes were already stored
        expect(again.json.data.digest).toBe(first.digest);
        expect(await storeCounts(s)).toEqual({ payloads: before.payloads + 1, chunks: before.chunks + 1, uploads: 0 });
        // Both uploaders may now publish it.
        await buyer.memory.publish.mutate({ memoryType: "kv_cache", kvCacheRef: first.digest, price: 1 });
      });

      test("a file with extra tensors keeps them; it travels only as a download", async () => {
        const file = buildKvCacheSafetensors({
          sourceModel: "llama-3-8b",
          keys: { dtype: "float16", shape: [4], data: new Float32Array([1, 2, 3, 4]) },
          values: { dtype: "float16", shape: [4], data: new Float32Array([5, 6, 7, 8]) },
          tensors: { positions: { dtype: "float32", shape: [4], data: new Float32Array([0, 1, 2, 3]) } },
        });
        const uploaded = await seller.payloads.upload(new Blob([file]));
        expect(Object.keys(uploaded.tensors).sort()).toEqual(["keys", "positions", "values"]);
        const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheRef: uploaded.digest, price: 1 });
        const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" });
        expect(bought.memory.kvCacheData).toBeUndefined();
        expect(bought.alignment).toMatchObject({ applied: false });
        expect(Buffer.compare(await (await buyer.payloads.download({ memoryId })).bytes(), file)).toBe(0);
      });

      test("kvCacheRef must name your own upload; exactly one of kvCacheData and kvCacheRef", async () => {
        const { digest } = await seller.payloads.upload(kvFile(3));
        for (const kvCacheRef of [digest, "f".repeat(64)]) {
          const error = await stranger.memory.publish.mutate({ memoryType: "kv_cache", kvCacheRef, price: 1 }).catch((e: unknown) => e);
          expect(isMemoryExchangeError(error, "NOT_FOUND")).toBe(true);
          expect((error as { details: { path: string }[] }).details[0]!.path).toBe("kvCacheRef");
        }
        const both = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheRef: digest, kvCacheData: kvCache(), price: 1 }).catch((e: unknown) => e);
        expect(isMemoryExchangeError(both, "INVALID_INPUT")).toBe(true);
        const neither = await seller.memory.publish.mutate({ memoryType: "kv_cache", price: 1 }).catch((e: unknown) => e);
        expect(isMemoryExchangeError(neither, "INVALID_INPUT")).toBe(true);
        expect((neither as { details: { path: string }[] }).details[0]!.path).toBe("kvCacheData");
        const malformed = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheRef: "abc", price: 1 }).catch((e: unknown) => e);
        expect(isMemoryExchangeError(malformed, "INVALID_INPUT")).toBe(true);
      });

      test("REST publish takes kv_cache_ref", async () => {
        const { digest } = await seller.payloads.upload(kvFile(4));
        const response = await fetch(`${s.url}/api/v1/memory/publish`, {
          method: "POST",
          headers: { authorization: `Bearer ${sellerKey}`, "content-type": "application/json" },
          body: JSON.stringify({ memory_type: "kv_cache", kv_cache_ref: digest, price: 2.5 }),
        });
        expect(response.status).toBe(201);
        const { data } = (await response.json()) as { data: { memory_id: number } };
        const purchase = await fetch(`${s.url}/api/v1/memory/purchase`, {
          method: "POST",
          headers: { authorization: `Bearer ${buyerKey}`, "content-type": "application/json" },
          body: JSON.stringify({ memory_id: data.memory_id, target_model: "llama-3-8b" }),
        });
        const bought = (await purchase.json()) as { data: { payload_url: string; memory: { kv_cache_data: unknown } } };
        expect(bought.data.payload_url).toBe(`/api/v1/memory/${data.memory_id}/payload`);
        expect(bought.data.memory.kv_cache_data).toEqual(safetensorsToKvCache(kvFile(4)));
      });
    });

    describe("upload validation", () => {
      test("bad uploads are refused with a clear 4xx and leave nothing behind", async () => {
        const good = kvFile(5);
        const dv = new DataView(good.buffer, good.byteOffset);
        const headerEnd = 8 + Number(dv.getBigUint64(0, true));
        const withNaN = good.slice();
        new DataView(withNaN.buffer).setFloat32(withNaN.length - 4, Number.NaN, true); // last element of "values" (F32, last in order)
        const noValues = buildSafetensors({ keys: { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) } });
        const mismatch = buildSafetensors({
          keys: { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) },
          values: { dtype: "float32", shape: [1, 2], data: new Float32Array([1, 2]) },
        });
        const intTensor = (() => {
          const header = new TextEncoder().encode('{"keys":{"dtype":"I8","shape":[1],"data_offsets":[0,1]},"values":{"dtype":"I8","shape":[1],"data_offsets":[1,2]}}');
          const out = new Uint8Array(8 + header.length + 2);
          new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
          out.set(header, 8);
          return out;
        })();
        const before = await storeCounts(s);
        const cases: [Uint8Array | string, number, string, string, boolean?][] = [
          [new Uint8Array(0), 400, "INVALID_INPUT", "empty"],
          ["not a safetensors file at all", 400, "INVALID_INPUT", "header"],
          [good.subarray(0, headerEnd - 3), 400, "INVALID_INPUT", "header"],
          [good.subarray(0, good.length - 5), 400, "INVALID_INPUT", "Content-Length is"],
          [good.subarray(0, good.length - 5), 400, "INVALID_INPUT", "ends early", true],
          [new Uint8Array([...good, 1, 2, 3]), 400, "INVALID_INPUT", "longer", true],
          [withNaN, 400, "INVALID_INPUT", 'element 23 of tensor "values"'],
          [noValues, 400, "INVALID_INPUT", '"values"'],
          [mismatch, 400, "INVALID_INPUT", "does not match"],
          [intTensor, 400, "INVALID_INPUT", "I8"],
          [
            buildSafetensors(
              { keys: { dtype: "float32", shape: [1], data: new Float32Array(1) }, values: { dtype: "float32", shape: [1], data: new Float32Array(1) } },
              { sourceModel: "x".repeat(51) },
            ),
            400,
            "INVALID_INPUT",
            "sourceModel",
          ],
        ];
        for (const [body, status, code, message, chunked] of cases) {
          const response = await uploadRaw(s, sellerKey, body, {}, chunked);
          expect({ status: response.status, code: response.json.code }).toEqual({ status, code });
          expect(response.json.error).toContain(message);
          expect(response.json.details?.length).toBeGreaterThan(0);
        }
        expect(await storeCounts(s)).toEqual(before);
      });

      test("a large upload refused early still gets its error answer (the rest is not read)", async () => {
        const n = 3 * 1024 * 1024;
        const values = new Float32Array(n).fill(1);
        values[5] = Number.POSITIVE_INFINITY;
        const file = buildKvCacheSafetensors({ keys: { dtype: "float32", shape: [n], data: values }, values: { dtype: "float32", shape: [n], data: new Float32Array(n) } });
        const before = await storeCounts(s);
        for (const body of [file, new Blob([file])]) {
          const error = await seller.payloads.upload(body).catch((e: unknown) => e);
          expect(isMemoryExchangeError(error, "INVALID_INPUT")).toBe(true);
          expect((error as Error).message).toContain('element 5 of tensor "keys"');
        }
        const anonymous = await fetch(`${s.url}/api/v1/payloads`, { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: file });
        expect(anonymous.status).toBe(401);
        expect(await storeCounts(s)).toEqual(before);
      });

      test("wrong content type → 415, no key → 401, read-only key → 403", async () => {
        const file = kvFile(7);
        expect((await uploadRaw(s, sellerKey, file, { "content-type": "application/json" })).json.code).toBe("UNSUPPORTED_MEDIA_TYPE");
        const anonymous = await fetch(`${s.url}/api/v1/payloads`, { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: file });
        expect(anonymous.status).toBe(401);
        const readOnly = await s.createKey(1, ["read"]);
        expect((await uploadRaw(s, readOnly, file)).status).toBe(403);
      });

      test("uploads beyond MEMORY_EXCHANGE_MAX_CONCURRENT_UPLOADS answer 503 with Retry-After and store nothing; the slot frees when an upload ends", async () => {
        const capped = await startTestServer(dialect, { MEMORY_EXCHANGE_MAX_CONCURRENT_UPLOADS: "1" });
        try {
          const uploader = await capped.client(5);
          const key = await capped.createKey(6);
          const file = buildKvCacheSafetensors({
            keys: { dtype: "float32", shape: [512, 1024], data: new Float32Array(512 * 1024).fill(0.5) },
            values: { dtype: "float32", shape: [512, 1024], data: new Float32Array(512 * 1024).fill(-0.5) },
          });
          // The first upload sends 2 MiB, then waits for `resume` before sending the rest.
          let resume!: () => void;
          const resumed = new Promise<void>((r) => (resume = r));
          let sent = 0;
          const stream = new ReadableStream<Uint8Array>({
            async pull(c) {
              if (sent === 2 * 1024 * 1024) await resumed;
              if (sent >= file.length) return c.close();
              c.enqueue(file.slice(sent, sent + 256 * 1024));
              sent += 256 * 1024;
            },
          });
          const first = uploader.payloads.upload(stream);
          for (let i = 0; i < 200 && (await storeCounts(capped)).uploads === 0; i++) await new Promise((r) => setTimeout(r, 25));
          const during = await storeCounts(capped);
          expect(during.uploads).toBe(1);

          const refused = await uploadRaw(capped, key, kvFile(30));
          expect(refused.status).toBe(503);
          expect(refused.json.code).toBe("OVERLOADED");
          expect(refused.headers.get("retry-after")).toBe("1");
          expect(await storeCounts(capped)).toMatchObject({ payloads: during.payloads, uploads: 1 });

          resume();
          expect((await first).size).toBe(file.length);
          expect((await uploadRaw(capped, key, kvFile(30))).status).toBe(201);
        } finally {
          await capped.close();
        }
      });

      test("an upload over the configured limit is refused with 413 before anything is stored", async () => {
        const small = await startTestServer(dialect, { MEMORY_EXCHANGE_MAX_UPLOAD_MB: "0.001" }); // 1048 bytes
        try {
          const key = await small.createKey(1);
          const big = buildKvCacheSafetensors({
            keys: { dtype: "float32", shape: [200], data: new Float32Array(200) },
            values: { dtype: "float32", shape: [200], data: new Float32Array(200) },
          });
          const response = await uploadRaw(small, key, big);
          expect(response.status).toBe(413);
          expect(response.json.code).toBe("PAYLOAD_TOO_LARGE");
          expect(await storeCounts(small)).toEqual({ payloads: 0, chunks: 0, uploads: 0 });
        } finally {
          await small.close();
        }
      });

      test("a client that goes away mid-upload leaves no chunks behind", async () => {
        const before = await storeCounts(s);
        const file = buildKvCacheSafetensors({
          keys: { dtype: "float32", shape: [512, 1024], data: new Float32Array(512 * 1024).fill(0.5) },
          values: { dtype: "float32", shape: [512, 1024], data: new Float32Array(512 * 1024).fill(0.25) },
        });
        const controller = new AbortController();
        let sent = 0;
        const stream = new ReadableStream<Uint8Array>({
          async pull(c) {
            // 3 MiB, then stall until the abort: the server has written chunks under a temporary key by then.
            if (sent >= 3 * 1024 * 1024) return new Promise(() => undefined);
            c.enqueue(file.slice(sent, sent + 256 * 1024));
            sent += 256 * 1024;
          },
        });
        const upload = seller.payloads.upload(stream, { signal: controller.signal }).catch((e: unknown) => e);
        for (let i = 0; i < 200 && (await storeCounts(s)).chunks < before.chunks + 2; i++) await new Promise((r) => setTimeout(r, 25));
        expect((await storeCounts(s)).uploads).toBe(1);
        controller.abort();
        await upload;
        let after = await storeCounts(s);
        for (let i = 0; i < 200 && after.uploads > 0; i++, after = await storeCounts(s)) await new Promise((r) => setTimeout(r, 25));
        expect(after).toEqual(before);
      });
    });

    describe("download", () => {
      let memoryId: number;
      let file: Uint8Array;
      beforeAll(async () => {
        file = kvFile(8);
        const { digest } = await seller.payloads.upload(file);
        ({ memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheRef: digest, price: 4 }));
        await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" });
      });
      const path = () => `/api/v1/memory/${memoryId}/payload`;

      test("seller and buyer → 200 with ETag, Content-Length and Accept-Ranges; a stranger → 403; no key → 401", async () => {
        for (const key of [sellerKey, buyerKey]) {
          const response = await downloadRaw(s, key, path());
          expect(response.status).toBe(200);
          expect(response.headers.get("etag")).toBe(`"${sha256(file)}"`);
          expect(response.headers.get("content-length")).toBe(String(file.length));
          expect(response.headers.get("accept-ranges")).toBe("bytes");
          expect(response.headers.get("content-type")).toBe("application/octet-stream");
          expect(Buffer.compare(response.body, file)).toBe(0);
        }
        const forbidden = await downloadRaw(s, strangerKey, path());
        expect(forbidden.status).toBe(403);
        expect(JSON.parse(new TextDecoder().decode(forbidden.body)).code).toBe("FORBIDDEN");
        await expect(stranger.payloads.download({ memoryId })).rejects.toMatchObject({ code: "FORBIDDEN", status: 403 });
        expect((await downloadRaw(s, undefined, path())).status).toBe(401);
        expect((await downloadRaw(s, sellerKey, "/api/v1/memory/999999/payload")).status).toBe(404);
        expect((await downloadRaw(s, sellerKey, "/api/v1/memory/abc/payload")).status).toBe(400);
      });

      test("Range requests return exactly the requested bytes", async () => {
        const size = file.length;
        const cases: [string, number, number][] = [
          ["bytes=0-0", 0, 0],
          ["bytes=10-99", 10, 99],
          ["bytes=100-", 100, size - 1],
          ["bytes=-17", size - 17, size - 1],
          ["bytes=5-100000", 5, size - 1],
        ];
        for (const [range, start, end] of cases) {
          const response = await downloadRaw(s, buyerKey, path(), { range });
          expect(response.status).toBe(206);
          expect(response.headers.get("content-range")).toBe(`bytes ${start}-${end}/${size}`);
          expect(response.headers.get("content-length")).toBe(String(end - start + 1));
          expect(Buffer.compare(response.body, file.subarray(start, end + 1))).toBe(0);
        }
        const unsatisfiable = await downloadRaw(s, buyerKey, path(), { range: `bytes=${size}-` });
        expect(unsatisfiable.status).toBe(416);
        expect(unsatisfiable.headers.get("content-range")).toBe(`bytes */${size}`);
        expect(JSON.parse(new TextDecoder().decode(unsatisfiable.body)).code).toBe("RANGE_NOT_SATISFIABLE");
        // Several ranges or another unit: ignored, the whole file is sent.
        expect((await downloadRaw(s, buyerKey, path(), { range: "bytes=0-1,5-6" })).status).toBe(200);
        // If-Range with another ETag: the range no longer applies.
        expect((await downloadRaw(s, buyerKey, path(), { range: "bytes=0-1", "if-range": '"other"' })).status).toBe(200);

        const viaSdk = await buyer.payloads.download({ memoryId }, { range: { suffix: 9 } });
        expect(viaSdk).toMatchObject({ status: 206, size, contentLength: 9, range: { start: size - 9, end: size - 1 } });
        expect(Buffer.compare(await viaSdk.bytes(), file.subarray(size - 9))).toBe(0);
      });

      test("If-None-Match with the digest → 304; HEAD → headers only", async () => {
        const notModified = await downloadRaw(s, buyerKey, path(), { "if-none-match": `"${sha256(file)}"` });
        expect(notModified.status).toBe(304);
        expect(notModified.body.length).toBe(0);
        expect((await buyer.payloads.download({ memoryId }, { ifNoneMatch: sha256(file) })).status).toBe(304);
        const head = await fetch(`${s.url}${path()}`, { method: "HEAD", headers: { authorization: `Bearer ${buyerKey}` } });
        expect(head.status).toBe(200);
        expect(head.headers.get("content-length")).toBe(String(file.length));
        expect((await head.arrayBuffer()).byteLength).toBe(0);
      });

      test("also answers without /api/v1, behind the main app's path-rewriting proxy", async () => {
        const response = await downloadRaw(s, buyerKey, `/memory/${memoryId}/payload`);
        expect(Buffer.compare(response.body, file)).toBe(0);
      });
    });

    describe("reasoning chains (paid per use)", () => {
      test("users download with the transaction id of their own use; the creator always", async () => {
        const file = kvFile(9, { sourceModel: "gpt-4" });
        const { digest } = await seller.payloads.upload(file);
        const { chainId } = await seller.reasoningChain.publish.mutate({
          chainName: "chain by ref",
          description: "uploaded snapshot",
          category: "test",
          kvCacheRef: digest,
          sourceModel: "gpt-4",
          pricePerUse: 0.5,
        });
        const use = await buyer.reasoningChain.use.mutate({ chainId, inputData: { q: 1 }, targetModel: "gpt-4" });
        expect(use.payloadUrl).toBe(`/api/v1/reasoning-chain/${chainId}/payload?transaction_id=${use.transactionId}`);
        expect(use.kvCacheSnapshot).toEqual(safetensorsToKvCache(file));

        const ok = await downloadRaw(s, buyerKey, use.payloadUrl);
        expect(ok.status).toBe(200);
        expect(Buffer.compare(ok.body, file)).toBe(0);
        const viaSdk = await buyer.payloads.download({ chainId, transactionId: use.transactionId });
        expect(Buffer.compare(await viaSdk.bytes(), file)).toBe(0);
        expect((await downloadRaw(s, buyerKey, `/api/v1/reasoning-chain/${chainId}/payload`)).status).toBe(403);
        expect((await downloadRaw(s, strangerKey, use.payloadUrl)).status).toBe(403); // someone else's receipt
        expect((await downloadRaw(s, sellerKey, `/api/v1/reasoning-chain/${chainId}/payload`)).status).toBe(200);

        const wrongModel = await seller.reasoningChain.publish
          .mutate({ chainName: "x", description: "x", category: "x", kvCacheRef: digest, sourceModel: "llama-3-8b", pricePerUse: 1 })
          .catch((e: unknown) => e);
        expect(isMemoryExchangeError(wrongModel, "INVALID_INPUT")).toBe(true);
      });
    });

    describe("inline limit", () => {
      test("above MEMORY_EXCHANGE_INLINE_PAYLOAD_MB, purchase and use answer a payloadUrl instead of the payload", async () => {
        const tight = await startTestServer(dialect, { MEMORY_EXCHANGE_INLINE_PAYLOAD_MB: "0.001" }); // 1048 bytes
        try {
          const [a, b] = await Promise.all([tight.client(1), tight.client(2)]);
          const document = kvCache("llama-3-8b", 3); // ~1.3 KB of safetensors
          const { memoryId } = await a.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: document, price: 1 });
          const bought = await b.memory.purchase.mutate({ memoryId, targetModel: "gpt-4" });
          expect(bought.memory.kvCacheData).toBeUndefined();
          expect(bought.payloadUrl).toBe(`/api/v1/memory/${memoryId}/payload`);
          expect(bought.alignment).toMatchObject({ applied: false, targetModel: "gpt-4" });
          expect((await b.memory.get.query({ memoryId })).kvCacheData).toBeUndefined();
          expect(safetensorsToKvCache(await (await b.payloads.download({ memoryId })).bytes())).toEqual(document);

          const { chainId } = await a.reasoningChain.publish.mutate({
            chainName: "c",
            description: "c",
            category: "c",
            kvCacheSnapshot: document,
            sourceModel: "llama-3-8b",
            pricePerUse: 1,
          });
          const use = await b.reasoningChain.use.mutate({ chainId, inputData: {}, targetModel: "llama-3-8b" });
          expect(use.kvCacheSnapshot).toBeUndefined();
          expect(use.payloadUrl).toContain(`transaction_id=${use.transactionId}`);
        } finally {
          await tight.close();
        }
      });
    });

    describe("the older code's inline JSON rows", () => {
      test("a legacy listing and chain are still served inline, and download as converted safetensors", async () => {
        const price = dialect === "sqlite" ? "450" : "4.50";
        await execute(
          s.server,
          `INSERT INTO memory_exchanges (seller_id, buyer_id, memory_type, kv_cache_data, source_model, price, status) VALUES (7, 0, 'kv_cache', ?, 'llama-3-8b', ${price}, 'pending')`,
          [JSON.stringify(LEGACY_KV)],
        );
        await execute(
          s.server,
          `INSERT INTO reasoning_chains (creator_id, chain_name, description, category, kv_cache_snapshot, source_model, price_per_use, status) VALUES (7, 'legacy', 'legacy', 'legacy', ?, 'gpt-4', ${price}, 'active')`,
          [JSON.stringify(LEGACY_CHAIN_SNAPSHOT)],
        );
        const { id: memoryId } = (await queryRows<{ id: number }>(s.server, "SELECT MAX(id) AS id FROM memory_exchanges"))[0]!;
        const { id: chainId } = (await queryRows<{ id: number }>(s.server, "SELECT MAX(id) AS id FROM reasoning_chains"))[0]!;

        const bought = await buyer.memory.purchase.mutate({ memoryId: Number(memoryId), targetModel: "llama-3-8b" });
        expect(bought.memory.kvCacheData).toEqual(LEGACY_KV);
        const file = await (await buyer.payloads.download({ memoryId: Number(memoryId) })).bytes();
        expect(safetensorsToKvCache(file)).toEqual(LEGACY_KV);
        const head = await downloadRaw(s, buyerKey, `/api/v1/memory/${memoryId}/payload`, { range: "bytes=0-7" });
        expect(head.status).toBe(206);
        expect(head.headers.get("etag")).toBe(`"${sha256(file)}"`);

        const use = await buyer.reasoningChain.use.mutate({ chainId: Number(chainId), inputData: {}, targetModel: "gpt-4" });
        expect(use.kvCacheSnapshot).toEqual(LEGACY_CHAIN_SNAPSHOT);
        const chainFile = await (await buyer.payloads.download({ chainId: Number(chainId), transactionId: use.transactionId })).bytes();
        expect(safetensorsToKvCache(chainFile)).toEqual(LEGACY_CHAIN_SNAPSHOT);
      });
    });
  });
}
