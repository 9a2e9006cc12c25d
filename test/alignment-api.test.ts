import { MemoryExchangeError, type MemoryExchangeClient } from "@memory-exchange/client";
import { decodeBase64, decodeToFloat32, safetensorsToKvCache, type KvCacheDocument } from "@memory-exchange/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { encodeTensor, expectedEncoded, float32Reference, float64Reference, pseudoRandom } from "./support/alignment-reference.js";
import { execute, queryRows } from "./support/rows.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/** Rank-2 payload ([tokens][dim] = 3 × 2) and W (2 × 3) of small integers: float64 arithmetic is exact. */
const RANK2 = {
  keys: [
    [1, 2],
    [3, 4],
    [5, -1],
  ],
  values: [
    [0, 1],
    [2, 0],
    [1, 1],
  ],
  w: [
    [1, 0, 2],
    [0, 1, -1],
  ],
  // by hand: [a, b] · W = [a, b, 2a - b]
  alignedKeys: [
    [1, 2, 0],
    [3, 4, 2],
    [5, -1, 11],
  ],
  alignedValues: [
    [0, 1, -1],
    [2, 0, 4],
    [1, 1, 1],
  ],
};

/** Rank-4 payload ([layers][heads][tokens][head_dim] = 2 × 1 × 2 × 2), square W: [a, b] · W = [2a, a + 3b]. */
const RANK4 = {
  keys: [[[[1, 2], [3, 0]]], [[[0, 1], [-2, 5]]]],
  values: [[[[1, 1], [2, 2]]], [[[0, 0], [1, -1]]]],
  w: [
    [2, 1],
    [0, 3],
  ],
  alignedKeys: [[[[2, 7], [6, 3]]], [[[0, 3], [-4, 13]]]],
  alignedValues: [[[[2, 4], [4, 8]]], [[[0, 0], [2, -2]]]],
};

const doc = (sourceModel: string, keys: unknown, values: unknown, metadata?: Record<string, unknown>) =>
  ({ sourceModel, keys, values, ...(metadata ? { metadata } : {}) }) as KvCacheDocument;

async function rejection(promise: Promise<unknown>): Promise<MemoryExchangeError> {
  const error = await promise.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MemoryExchangeError);
  return error as MemoryExchangeError;
}

for (const dialect of await testDialects()) {
  describe(`alignment on purchase and use (${dialect})`, () => {
    let s: TestServer;
    let seller: MemoryExchangeClient;
    let buyer: MemoryExchangeClient;
    let other: MemoryExchangeClient;
    let third: MemoryExchangeClient;
    const counters = () => ({ ...s.server.services.alignment.counters });

    beforeAll(async () => {
      s = await startTestServer(dialect);
      [seller, buyer, other, third] = await Promise.all([s.client(10), s.client(20), s.client(30), s.client(40)]);
    });
    afterAll(() => s?.close());

    test("rank-2 nested payload: exact product, target dimension, sourceModel, metrics from the data", async () => {
      const published = doc("src-r2", RANK2.keys, RANK2.values, { tokenCount: 3, note: { camelCase: true } });
      const registered = await seller.alignment.publishMatrix.mutate({ sourceModel: "src-r2", targetModel: "tgt-r2", matrix: RANK2.w, version: "1.0.0" });
      expect(registered).toEqual({ matrixId: expect.any(Number), sourceDim: 2, targetDim: 3 });
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: published, price: 5 });

      const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-r2" });
      expect(bought.memory.kvCacheData).toEqual({
        sourceModel: "tgt-r2",
        keys: RANK2.alignedKeys,
        values: RANK2.alignedValues,
        metadata: { tokenCount: 3, note: { camelCase: true } },
      });
      // key order of the published document is kept
      expect(Object.keys(bought.memory.kvCacheData!)).toEqual(["sourceModel", "keys", "values", "metadata"]);
      expect(bought.alignment).toMatchObject({
        applied: true,
        matrixId: registered.matrixId,
        matrixVersion: "1.0.0",
        sourceModel: "src-r2",
        targetModel: "tgt-r2",
        sourceDim: 2,
        targetDim: 3,
        cached: false,
        flops: 2 * (2 * 3 * 2 * 3),
      });
      if (!bought.alignment.applied) throw new Error("not applied");
      // ‖x‖² = 5, 25, 26 and ‖xW‖² = 5, 29, 147 for the keys (by hand)
      const keys = bought.alignment.metrics.keys;
      expect(keys).toMatchObject({ vectors: 3, zeroVectors: 0, nonFiniteVectors: 0, cosineToIdentity: null, cosineSkipped: 0 });
      expect(keys.energyRetentionMin).toBe(1);
      expect(keys.energyRetentionMax).toBeCloseTo(147 / 26, 14);
      expect(keys.energyRetentionMean).toBeCloseTo((1 + 29 / 25 + 147 / 26) / 3, 14);
      expect(keys.energyRetentionTotal).toBeCloseTo(181 / 56, 14);
      // values: ‖x‖² = 1, 4, 2 → ‖xW‖² = 2, 20, 3
      expect(bought.alignment.metrics.values.energyRetentionMean).toBeCloseTo((2 + 5 + 1.5) / 3, 14);
    });

    test("rank-4 nested payload: exact product; zero vectors counted, cosine for a square W", async () => {
      await seller.alignment.publishMatrix.mutate({ sourceModel: "src-r4", targetModel: "tgt-r4", matrix: RANK4.w });
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: doc("src-r4", RANK4.keys, RANK4.values), price: 5 });
      const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-r4" });
      expect(bought.memory.kvCacheData).toEqual(doc("tgt-r4", RANK4.alignedKeys, RANK4.alignedValues));
      if (!bought.alignment.applied) throw new Error("not applied");
      expect(bought.alignment.metrics.values).toMatchObject({ vectors: 4, zeroVectors: 1 });
      // [1,1]→[2,4]: cos = 6/(√2·√20); [2,2] same direction; [1,-1]→[2,-2]: cos = 1
      const c = 6 / (Math.sqrt(2) * Math.sqrt(20));
      expect(bought.alignment.metrics.values.cosineToIdentity).toBeCloseTo((c + c + 1) / 3, 14);
    });

    test("float32 encoded payload: bit-exact against a float32 loop; float16, bfloat16 and float64 keep their encoding", async () => {
      const k = 8;
      const n = 6;
      const rows = 5;
      const wValues = pseudoRandom(k * n, 7, 0.5).map(Math.fround);
      const w = new Float32Array(wValues);
      await seller.alignment.publishMatrix.mutate({ sourceModel: "src-enc", targetModel: "tgt-enc", matrix: encodeTensor("float32", [k, n], w) });

      for (const [i, dtype] of (["float32", "float16", "bfloat16"] as const).entries()) {
        const keys = encodeTensor(dtype, [1, rows, k], pseudoRandom(rows * k, 100 + i, 3));
        const values = encodeTensor(dtype, [1, rows, k], pseudoRandom(rows * k, 200 + i, 3));
        const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: doc("src-enc", keys, values), price: 1 });
        const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-enc" });
        expect(bought.alignment.applied).toBe(true);
        expect(bought.memory.kvCacheData).toEqual(doc("tgt-enc", expectedEncoded(keys, w, n), expectedEncoded(values, w, n)));
        if (dtype === "float32") {
          // and the same bits as the reference, element by element
          const got = decodeToFloat32("float32", decodeBase64((bought.memory.kvCacheData!.keys as { data: string }).data));
          const want = float32Reference(decodeToFloat32("float32", decodeBase64(keys.data)), rows, k, w, n);
          expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(want.buffer));
        }
      }

      const x64 = pseudoRandom(rows * k, 300, 2);
      const f64 = encodeTensor("float64", [rows, k], x64);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: doc("src-enc", f64, f64), price: 1 });
      const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-enc" });
      const expected = encodeTensor("float64", [rows, n], float64Reference(x64, rows, k, Array.from(w), n));
      expect(bought.memory.kvCacheData).toEqual(doc("tgt-enc", expected, expected));
    });

    test("a float64 W applied to a float32 payload is rounded to float32 first", async () => {
      const w64 = [
        [0.1, 0.2],
        [0.3, 1 / 3],
      ];
      await seller.alignment.publishMatrix.mutate({ sourceModel: "src-w64", targetModel: "tgt-w64", matrix: w64 });
      const keys = encodeTensor("float32", [3, 2], pseudoRandom(6, 9, 1));
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: doc("src-w64", keys, keys), price: 1 });
      const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-w64" });
      const expected = expectedEncoded(keys, new Float32Array(w64.flat()), 2);
      expect(bought.memory.kvCacheData).toEqual(doc("tgt-w64", expected, expected));
    });

    test("same model, no matrix, and a last dimension other than source_dim deliver the payload as published", async () => {
      const published = doc("src-miss", RANK2.keys, RANK2.values);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: published, price: 1 });

      const same = await buyer.memory.purchase.mutate({ memoryId, targetModel: "src-miss" });
      expect(same.alignment).toEqual({ applied: false, reason: "same model", sourceModel: "src-miss", targetModel: "src-miss" });
      expect(same.memory.kvCacheData).toEqual(published);

      const missing = await buyer.memory.purchase.mutate({ memoryId, targetModel: "nobody-maps-to-me" });
      expect(missing.alignment).toMatchObject({ applied: false, sourceModel: "src-miss", targetModel: "nobody-maps-to-me" });
      expect(missing.alignment.applied === false && missing.alignment.reason).toMatch(/no active alignment matrix .*src-miss -> nobody-maps-to-me/);
      expect(missing.memory.kvCacheData).toEqual(published);

      const { matrixId } = await seller.alignment.publishMatrix.mutate({ sourceModel: "src-miss", targetModel: "tgt-3d", matrix: [[1], [2], [3]] });
      const mismatch = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-3d" });
      expect(mismatch.alignment).toMatchObject({ applied: false, matrixId, sourceModel: "src-miss", targetModel: "tgt-3d" });
      const reason = mismatch.alignment.applied === false ? mismatch.alignment.reason : "";
      expect(reason).toMatch(/last dimension is 2/);
      expect(reason).toMatch(/source_dim 3/);
      expect(mismatch.memory.kvCacheData).toEqual(published);
    });

    test("the newest active matrix of the pair applies; retired ones do not; only the publisher retires", async () => {
      const published = doc("src-new", [[1, 1]], [[2, 3]]);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: published, price: 1 });
      const first = await other.alignment.publishMatrix.mutate({ sourceModel: "src-new", targetModel: "tgt-new", matrix: [[1], [1]] });
      const second = await other.alignment.publishMatrix.mutate({ sourceModel: "src-new", targetModel: "tgt-new", matrix: [[10], [100]] });

      const listed = await buyer.alignment.list.query({ sourceModel: "src-new", targetModel: "tgt-new" });
      expect(listed.matrices.map((m) => m.id)).toEqual([second.matrixId, first.matrixId]);
      expect(listed.matrices[0]).toMatchObject({ sourceDim: 2, targetDim: 1, dtype: "float64", status: "active", publisherId: 30 });
      expect(listed.matrices[0]).not.toHaveProperty("matrix");

      const a = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-new" });
      expect(a.alignment).toMatchObject({ applied: true, matrixId: second.matrixId });
      expect(a.memory.kvCacheData).toEqual(doc("tgt-new", [[110]], [[320]]));

      const forbidden = await rejection(buyer.alignment.setStatus.mutate({ matrixId: second.matrixId, status: "inactive" }));
      expect(forbidden).toMatchObject({ code: "FORBIDDEN", status: 403 });
      expect(await other.alignment.setStatus.mutate({ matrixId: second.matrixId, status: "inactive" })).toMatchObject({ status: "inactive" });

      const b = await third.memory.purchase.mutate({ memoryId, targetModel: "tgt-new" });
      expect(b.alignment).toMatchObject({ applied: true, matrixId: first.matrixId });
      expect(b.memory.kvCacheData).toEqual(doc("tgt-new", [[2]], [[5]]));

      await other.alignment.setStatus.mutate({ matrixId: first.matrixId, status: "inactive" });
      const c = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-new" });
      expect(c.alignment).toMatchObject({ applied: false });
      expect(c.memory.kvCacheData).toEqual(published);
      expect((await buyer.alignment.list.query({ sourceModel: "src-new", status: "active" })).matrices).toEqual([]);

      const unknown = await rejection(other.alignment.setStatus.mutate({ matrixId: 999_999, status: "active" }));
      expect(unknown).toMatchObject({ code: "NOT_FOUND" });
    });

    test("a repeat purchase, another buyer, and repeat chain uses read the cache and never recompute", async () => {
      await seller.alignment.publishMatrix.mutate({ sourceModel: "src-cache", targetModel: "tgt-cache", matrix: RANK2.w });
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: doc("src-cache", RANK2.keys, RANK2.values), price: 2 });

      const before = counters();
      const first = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-cache" });
      expect(first.alignment).toMatchObject({ applied: true, cached: false });
      expect(counters().computed).toBe(before.computed + 1);

      const repeat = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-cache" });
      expect(repeat).toMatchObject({ transactionId: first.transactionId, newPurchase: false });
      const secondBuyer = await other.memory.purchase.mutate({ memoryId, targetModel: "tgt-cache" });
      for (const again of [repeat, secondBuyer]) {
        expect(again.alignment).toEqual({ ...first.alignment, cached: true });
        expect(again.memory.kvCacheData).toEqual(first.memory.kvCacheData);
      }
      expect(counters()).toEqual({ computed: before.computed + 1, cached: before.cached + 2 });
      const rows = await queryRows(s.server, "SELECT aligned_digest FROM mx_aligned_payloads WHERE source_digest = ?", [first.memory.payloadDigest]);
      expect(rows).toHaveLength(1);

      const { chainId } = await seller.reasoningChain.publish.mutate({
        chainName: "cached chain",
        description: "d",
        category: "c",
        kvCacheSnapshot: doc("src-cache", RANK4.keys, RANK4.values),
        sourceModel: "src-cache",
        pricePerUse: 1,
      });
      const mid = counters();
      const use1 = await buyer.reasoningChain.use.mutate({ chainId, inputData: {}, targetModel: "tgt-cache" });
      const use2 = await buyer.reasoningChain.use.mutate({ chainId, inputData: {}, targetModel: "tgt-cache" });
      expect(use1.alignment).toMatchObject({ applied: true, cached: false, targetDim: 3 });
      expect(use1.transactionId).not.toBe(use2.transactionId);
      expect(use2.alignment).toEqual({ ...use1.alignment, cached: true });
      expect(use2.kvCacheSnapshot).toEqual(use1.kvCacheSnapshot);
      expect(counters().computed).toBe(mid.computed + 1);
    });

    test("a product that overflows the payload's dtype is refused (never delivered as Infinity), and the refusal is cached", async () => {
      const { matrixId } = await seller.alignment.publishMatrix.mutate({ sourceModel: "src-ovf", targetModel: "tgt-ovf", matrix: [[100], [100]] });
      const keys = encodeTensor("float16", [1, 2], [1000, 1000]); // 200000 > 65504, the largest float16
      const published = doc("src-ovf", keys, encodeTensor("float16", [1, 2], [1, 1]));
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: published, price: 1 });
      const before = counters();
      for (const client of [buyer, other]) {
        const bought = await client.memory.purchase.mutate({ memoryId, targetModel: "tgt-ovf" });
        expect(bought.alignment).toMatchObject({ applied: false, matrixId });
        expect(bought.alignment.applied === false && bought.alignment.reason).toMatch(/overflows.*keys/);
        expect(bought.memory.kvCacheData).toEqual(published);
      }
      expect(counters()).toEqual({ computed: before.computed + 1, cached: before.cached + 1 });
    });

    test("rows the older code wrote (inline JSON) are aligned too, cached by the digest of their canonical form", async () => {
      const legacy = { sourceModel: "src-legacy", keys: [[[[1, 2], [3, 4]]]], values: [[[[5, 6], [7, 8]]]], metadata: { tokenCount: 2 } };
      const price = dialect === "sqlite" ? 450 : "4.50";
      await execute(
        s.server,
        "INSERT INTO memory_exchanges (seller_id, buyer_id, memory_type, kv_cache_data, source_model, price, status) VALUES (?, 0, 'kv_cache', ?, ?, ?, 'pending')",
        [77, JSON.stringify(legacy), "src-legacy", price],
      );
      const [{ id }] = (await queryRows<{ id: number }>(s.server, "SELECT id FROM memory_exchanges WHERE seller_id = 77")) as [{ id: number }];
      await seller.alignment.publishMatrix.mutate({ sourceModel: "src-legacy", targetModel: "tgt-legacy", matrix: [[0, 1], [1, 0]] });

      const before = counters();
      const a = await buyer.memory.purchase.mutate({ memoryId: Number(id), targetModel: "tgt-legacy" });
      expect(a.memory.kvCacheData).toEqual({ sourceModel: "tgt-legacy", keys: [[[[2, 1], [4, 3]]]], values: [[[[6, 5], [8, 7]]]], metadata: { tokenCount: 2 } });
      const b = await other.memory.purchase.mutate({ memoryId: Number(id), targetModel: "tgt-legacy" });
      expect(b.alignment).toMatchObject({ applied: true, cached: true });
      expect(counters().computed).toBe(before.computed + 1);
    });
  });

  describe(`alignment limits (${dialect})`, () => {
    let s: TestServer;
    let seller: MemoryExchangeClient;
    let buyer: MemoryExchangeClient;
    let buyerKey: string;

    beforeAll(async () => {
      // 1000 FLOPs, payloads of at most 2 kB aligned, an inline limit of about 1 kB
      s = await startTestServer(dialect, {
        MEMORY_EXCHANGE_ALIGNMENT_MAX_GFLOP: "0.000001",
        MEMORY_EXCHANGE_ALIGNMENT_MAX_PAYLOAD_MB: "0.002",
        MEMORY_EXCHANGE_INLINE_PAYLOAD_MB: "0.001",
      });
      [seller, buyer] = await Promise.all([s.client(10), s.client(20)]);
      buyerKey = await s.createKey(20);
    });
    afterAll(() => s?.close());

    const counts = async () => {
      const [trades] = await queryRows<{ n: number | string }>(s.server, "SELECT COUNT(*) AS n FROM memory_exchanges WHERE buyer_id = 20");
      return Number(trades!.n);
    };

    test("work above the FLOP bound is ALIGNMENT_TOO_LARGE and records no purchase or chain use", async () => {
      const wide = [Array.from({ length: 300 }, () => 1), Array.from({ length: 300 }, () => 2)];
      await seller.alignment.publishMatrix.mutate({ sourceModel: "src-big", targetModel: "tgt-big", matrix: wide });
      const published = doc("src-big", [[1, 2]], [[3, 4]]);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: published, price: 3 });

      const error = await rejection(buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-big" }));
      expect(error).toMatchObject({ code: "ALIGNMENT_TOO_LARGE", status: 422 });
      expect(error.message).toMatch(/2400 FLOPs/);
      expect(await counts()).toBe(0);
      expect((await buyer.memory.history.query({ role: "buyer" })).transactions).toEqual([]);

      const { chainId } = await seller.reasoningChain.publish.mutate({
        chainName: "big",
        description: "d",
        category: "c",
        kvCacheSnapshot: published,
        sourceModel: "src-big",
        pricePerUse: 1,
      });
      const use = await rejection(buyer.reasoningChain.use.mutate({ chainId, inputData: {}, targetModel: "tgt-big" }));
      expect(use).toMatchObject({ code: "ALIGNMENT_TOO_LARGE" });
      expect(await seller.reasoningChain.get.query({ chainId })).toMatchObject({ usageCount: 0, totalRevenue: 0 });
      expect(await counts()).toBe(0);

      // the same listing without alignment is bought normally
      expect((await buyer.memory.purchase.mutate({ memoryId, targetModel: "src-big" })).newPurchase).toBe(true);
      expect(await counts()).toBe(1);
    });

    test("an aligned payload above the inline limit is delivered by download from its own payloadUrl, never truncated", async () => {
      const w = [Array.from({ length: 100 }, (_, j) => j), Array.from({ length: 100 }, () => 1)];
      await seller.alignment.publishMatrix.mutate({ sourceModel: "src-wide", targetModel: "tgt-wide", matrix: w });
      const published = doc("src-wide", [[1, 2]], [[3, 4]]);
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: published, price: 3 });
      const bought = await buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-wide" });
      expect(bought.alignment).toMatchObject({ applied: true, sourceDim: 2, targetDim: 100 });
      expect(bought.memory).not.toHaveProperty("kvCacheData");
      expect(bought.payloadUrl).toMatch(new RegExp(`^/api/v1/memory/${memoryId}/payload\\?aligned=[0-9a-f]{64}$`));

      const download = await fetch(s.url + bought.payloadUrl, { headers: { authorization: `Bearer ${buyerKey}` } });
      expect(download.status).toBe(200);
      const file = new Uint8Array(await download.arrayBuffer());
      expect(safetensorsToKvCache(file)).toEqual(
        doc("tgt-wide", [w[0]!.map((a, j) => a + 2 * w[1]![j]!)], [w[0]!.map((a, j) => 3 * a + 4 * w[1]![j]!)]),
      );
      // the published payload stays at the plain URL; an aligned digest that is not this item's is 404, a malformed one 400
      const plain = await fetch(`${s.url}/api/v1/memory/${memoryId}/payload`, { headers: { authorization: `Bearer ${buyerKey}` } });
      expect(safetensorsToKvCache(new Uint8Array(await plain.arrayBuffer()))).toEqual(published);
      const foreign = await fetch(`${s.url}/api/v1/memory/${memoryId}/payload?aligned=${"0".repeat(64)}`, { headers: { authorization: `Bearer ${buyerKey}` } });
      expect(foreign.status).toBe(404);
      const malformed = await fetch(`${s.url}/api/v1/memory/${memoryId}/payload?aligned=xyz`, { headers: { authorization: `Bearer ${buyerKey}` } });
      expect(malformed.status).toBe(400);
      const stranger = await fetch(s.url + bought.payloadUrl, { headers: { authorization: `Bearer ${await s.createKey(99)}` } });
      expect(stranger.status).toBe(403);
    });

    test("a payload above the alignment size bound is ALIGNMENT_TOO_LARGE", async () => {
      await seller.alignment.publishMatrix.mutate({ sourceModel: "src-long", targetModel: "tgt-long", matrix: [[1], [1]] });
      const rows = Array.from({ length: 100 }, (_, i) => [i, i + 1]); // 2 × 100 × 2 × 1 × 2 = 800 FLOPs, but 3.2 kB of data
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: doc("src-long", rows, rows), price: 3 });
      const before = await counts();
      const error = await rejection(buyer.memory.purchase.mutate({ memoryId, targetModel: "tgt-long" }));
      expect(error).toMatchObject({ code: "ALIGNMENT_TOO_LARGE" });
      expect(error.message).toMatch(/MEMORY_EXCHANGE_ALIGNMENT_MAX_PAYLOAD_MB/);
      expect(await counts()).toBe(before);
    });

    // last in this suite: it stops the server's alignment workers
    test("when the workers cannot take the job the answer is a retryable 503 and nothing is recorded", async () => {
      await seller.alignment.publishMatrix.mutate({ sourceModel: "src-busy", targetModel: "tgt-busy", matrix: [[1], [1]] });
      const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: doc("src-busy", [[1, 2]], [[3, 4]]), price: 3 });
      await s.server.services.alignment.pool.close();
      const before = await counts();
      const response = await fetch(`${s.url}/api/v1/memory/purchase`, {
        method: "POST",
        headers: { authorization: `Bearer ${buyerKey}`, "content-type": "application/json" },
        body: JSON.stringify({ memory_id: memoryId, target_model: "tgt-busy" }),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("1");
      expect(await response.json()).toMatchObject({ success: false, code: "OVERLOADED" });
      expect(await counts()).toBe(before);
    });
  });
}
