import { analyzeKvCache, encodeSafetensors, kvCacheToSafetensors } from "@memory-exchange/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { encodeTensor } from "./support/alignment-reference.js";
import { expectErrorEnvelope, restClient } from "./support/rest-client.js";
import { tableCounts } from "./support/rows.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

const MATRIX_TABLES = ["mx_alignment_matrices", "mx_payloads"];

for (const dialect of await testDialects()) {
  describe(`REST /api/v1/alignment (${dialect})`, () => {
    let s: TestServer;
    let rest: ReturnType<typeof restClient>;
    let sellerKey: string;
    let buyerKey: string;
    let strangerKey: string;
    let readOnlyKey: string;

    /** PUT /api/v1/payloads: a safetensors file streamed into the payload store. */
    const upload = async (key: string, bytes: Uint8Array) => {
      const response = await fetch(`${s.url}/api/v1/payloads`, {
        method: "PUT",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/octet-stream" },
        body: bytes,
      });
      return { status: response.status, body: (await response.json()) as any };
    };

    beforeAll(async () => {
      s = await startTestServer(dialect);
      rest = restClient(s.url);
      [sellerKey, buyerKey, strangerKey, readOnlyKey] = await Promise.all([s.createKey(1), s.createKey(2), s.createKey(3), s.createKey(4, ["read"])]);
    });
    afterAll(() => s?.close());

    test("registers a matrix as a nested array, a compact tensor or an uploaded file, and lists them without data", async () => {
      const nested = await rest("POST", "/api/v1/alignment/matrices", {
        key: sellerKey,
        body: { source_model: "rest-src", target_model: "rest-tgt", matrix: [[1, 0, 0], [0, 1, 0]], version: "1.0.0", description: "pad-free" },
      });
      expect(nested.status).toBe(201);
      expect(nested.body).toEqual({
        success: true,
        data: { matrix_id: expect.any(Number), source_dim: 2, target_dim: 3, message: "Alignment matrix registered" },
      });

      const encoded = await rest("POST", "/api/v1/alignment/matrices", {
        key: sellerKey,
        body: { source_model: "rest-src", target_model: "rest-tgt", matrix: encodeTensor("float16", [2, 3], [1, 2, 3, 4, 5, 6]) },
      });
      expect(encoded.status).toBe(201);
      expect(encoded.body.data).toMatchObject({ source_dim: 2, target_dim: 3 });

      const file = encodeSafetensors({ matrix: { dtype: "float32", shape: [2, 4], data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer) } });
      const uploaded = await upload(sellerKey, file);
      expect(uploaded.status).toBe(201);
      expect(uploaded.body.data.tensors).toEqual({ matrix: { dtype: "float32", shape: [2, 4] } });
      const byDigest = await rest("POST", "/api/v1/alignment/matrices", {
        key: sellerKey,
        body: { source_model: "rest-src", target_model: "rest-other", matrix: uploaded.body.data.digest },
      });
      expect(byDigest.status).toBe(201);
      expect(byDigest.body.data).toMatchObject({ source_dim: 2, target_dim: 4 });

      const listed = await rest("GET", "/api/v1/alignment/matrices?source_model=rest-src&target_model=rest-tgt", { key: readOnlyKey });
      expect(listed.status).toBe(200);
      const { matrices } = listed.body.data;
      expect(matrices.map((m: { id: number }) => m.id)).toEqual([encoded.body.data.matrix_id, nested.body.data.matrix_id]);
      expect(matrices[1]).toEqual({
        id: nested.body.data.matrix_id,
        source_model: "rest-src",
        target_model: "rest-tgt",
        source_dim: 2,
        target_dim: 3,
        dtype: "float64",
        version: "1.0.0",
        description: "pad-free",
        status: "active",
        publisher_id: 1,
        digest: expect.stringMatching(/^[0-9a-f]{64}$/),
        created_at: expect.stringMatching(/Z$/),
      });
      expect(matrices[0]).toMatchObject({ dtype: "float16", version: null });
      const all = await rest("GET", "/api/v1/alignment/matrices?source_model=rest-src", { key: readOnlyKey });
      expect(all.body.data.matrices).toHaveLength(3);
    });

    test("a purchase reports the alignment in snake_case and delivers the aligned payload", async () => {
      await rest("POST", "/api/v1/alignment/matrices", { key: sellerKey, body: { source_model: "buy-src", target_model: "buy-tgt", matrix: [[2], [3]] } });
      const published = await rest("POST", "/api/v1/memory/publish", {
        key: sellerKey,
        body: { memory_type: "kv_cache", kv_cache_data: { sourceModel: "buy-src", keys: [[1, 1]], values: [[0, 2]] }, price: 1 },
      });
      const bought = await rest("POST", "/api/v1/memory/purchase", { key: buyerKey, body: { memory_id: published.body.data.memory_id, target_model: "buy-tgt" } });
      expect(bought.status).toBe(200);
      expect(bought.body.data.memory.kv_cache_data).toEqual({ sourceModel: "buy-tgt", keys: [[5]], values: [[6]] });
      expect(bought.body.data.alignment).toEqual({
        applied: true,
        matrix_id: expect.any(Number),
        matrix_version: null,
        source_model: "buy-src",
        target_model: "buy-tgt",
        source_dim: 2,
        target_dim: 1,
        cached: false,
        flops: 8,
        metrics: {
          keys: expect.objectContaining({ vectors: 1, energy_retention_mean: 12.5, energy_retention_min: 12.5, cosine_to_identity: null }),
          values: expect.objectContaining({ vectors: 1, zero_vectors: 0, energy_retention_total: 9 }),
        },
      });
    });

    test("bad matrices are 400 naming the field, and nothing is stored", async () => {
      const before = await tableCounts(s.server, MATRIX_TABLES);
      const cases: [unknown, RegExp][] = [
        [[[1, 2], [3]], /matrix\[1\]/],
        [[[[1]]], /matrix/],
        [[1, 2, 3], /2-D/],
        [[[1, Number.NaN]], /matrix/],
        [{ dtype: "float32", shape: [2, 2, 1], data: "AAAAAAAAAAAAAAAAAAAAAA==" }, /source_dim, target_dim/],
        [{ dtype: "float32", shape: [2, 2], data: "AAAA" }, /matrix\.data/],
        ["not-a-digest", /digest/],
        [undefined, /matrix/],
      ];
      for (const [matrix, message] of cases) {
        const response = await rest("POST", "/api/v1/alignment/matrices", { key: sellerKey, body: { source_model: "bad-src", target_model: "bad-tgt", matrix } });
        expectErrorEnvelope(response, 400, "INVALID_INPUT");
        expect(JSON.stringify(response.body.details)).toMatch(message);
      }
      const same = await rest("POST", "/api/v1/alignment/matrices", { key: sellerKey, body: { source_model: "m", target_model: "m", matrix: [[1]] } });
      expectErrorEnvelope(same, 400, "INVALID_INPUT");
      expect(same.body.details).toEqual([{ path: "target_model", message: expect.stringMatching(/differ/) }]);
      expect(await tableCounts(s.server, MATRIX_TABLES)).toEqual(before);
    });

    test("a digest must be the caller's own upload of a matrix file; read-only keys cannot publish", async () => {
      const file = encodeSafetensors({ w: { dtype: "float64", shape: [1, 2], data: new Uint8Array(new Float64Array([1, 2]).buffer) } });
      const { body } = await upload(sellerKey, file);
      const stranger = await rest("POST", "/api/v1/alignment/matrices", { key: strangerKey, body: { source_model: "a", target_model: "b", matrix: body.data.digest } });
      expectErrorEnvelope(stranger, 404, "NOT_FOUND");
      expect(stranger.body.details).toEqual([{ path: "matrix", message: expect.stringMatching(/uploaded by you/) }]);

      const analysis = analyzeKvCache({ sourceModel: "a", keys: [[1, 2]], values: [[3, 4]] }, { maxElements: 100 });
      if (!analysis.ok) throw new Error("fixture");
      const kv = await upload(sellerKey, kvCacheToSafetensors(analysis.payload));
      const notMatrix = await rest("POST", "/api/v1/alignment/matrices", { key: sellerKey, body: { source_model: "a", target_model: "b", matrix: kv.body.data.digest } });
      expectErrorEnvelope(notMatrix, 422, "UNPROCESSABLE");
      expect(notMatrix.body.error).toMatch(/not an alignment matrix file/);

      const readOnly = await rest("POST", "/api/v1/alignment/matrices", { key: readOnlyKey, body: { source_model: "a", target_model: "b", matrix: [[1]] } });
      expectErrorEnvelope(readOnly, 403, "FORBIDDEN");
    });

    test("the publisher retires a matrix over REST", async () => {
      const created = await rest("POST", "/api/v1/alignment/matrices", { key: sellerKey, body: { source_model: "st-src", target_model: "st-tgt", matrix: [[1]] } });
      const id = created.body.data.matrix_id;
      const denied = await rest("POST", "/api/v1/alignment/matrices/status", { key: buyerKey, body: { matrix_id: id, status: "inactive" } });
      expectErrorEnvelope(denied, 403, "FORBIDDEN");
      const retired = await rest("POST", "/api/v1/alignment/matrices/status", { key: sellerKey, body: { matrix_id: id, status: "inactive" } });
      expect(retired.status).toBe(200);
      expect(retired.body.data).toMatchObject({ id, status: "inactive" });
      const listed = await rest("GET", "/api/v1/alignment/matrices?source_model=st-src&status=active", { key: sellerKey });
      expect(listed.body.data.matrices).toEqual([]);
    });
  });
}
