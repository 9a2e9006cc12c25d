import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import {
  analyzeKvCache,
  decodeSafetensors,
  decodeToFloat64,
  DTYPES,
  encodeBase64,
  encodeFromFloat64,
  encodeSafetensors,
  kvCacheToDocument,
  kvCacheToSafetensors,
  SafetensorsError,
  safetensorsToKvCache,
  safetensorsToParsedKvCache,
  type ParsedKvCache,
} from "../src/tensor/index.js";

const limits = { maxElements: 100_000 };

function parse(doc: unknown): ParsedKvCache {
  const r = analyzeKvCache(doc, limits);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.payload;
}

/** JSON → validate → canonical safetensors → JSON. */
function roundTrip(json: string): string {
  return JSON.stringify(safetensorsToKvCache(kvCacheToSafetensors(parse(JSON.parse(json)))));
}

function nested(shape: number[], seed = 1): unknown[] {
  let i = seed;
  const values = [0.1, 1e-300, 123456789.123456789, 7, -3, 2.5e-8, 1 / 3, -1e20, 0, 65504];
  const make = (d: number): unknown[] =>
    Array.from({ length: shape[d]! }, () => (d === shape.length - 1 ? values[i++ % values.length]! * (i % 3 === 0 ? -1 : 1) : make(d + 1)));
  return make(0);
}

function encoded(dtype: (typeof DTYPES)[number], shape: number[], values: number[]) {
  return { dtype, shape, data: encodeBase64(encodeFromFloat64(dtype, new Float64Array(values))) };
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

describe("analyzeKvCache", () => {
  test("accepts nested and encoded tensors, keeps the rest and the key order", () => {
    const doc = {
      metadata: { layer: 3, tags: ["a"] },
      sourceModel: "llama-3-8b",
      values: encoded("float16", [2, 2], [1, 2, 3, 4]),
      keys: [[1, 2], [3, 4.5]],
      note: "hello",
    };
    const r = analyzeKvCache(doc, limits);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = r.payload;
    expect(p.sourceModel).toBe("llama-3-8b");
    expect(p.keys).toMatchObject({ form: "nested", dtype: "float64", shape: [2, 2] });
    expect(Array.from(decodeToFloat64("float64", p.keys.bytes))).toEqual([1, 2, 3, 4.5]);
    expect(p.values).toMatchObject({ form: "encoded", dtype: "float16", shape: [2, 2] });
    expect(Array.from(p.values.bytes)).toEqual([0x00, 0x3c, 0x00, 0x40, 0x00, 0x42, 0x00, 0x44]);
    expect(p.rest).toEqual({ metadata: { layer: 3, tags: ["a"] }, note: "hello" });
    expect(Object.keys(p.rest)).toEqual(["metadata", "note"]);
    expect(p.keyOrder).toEqual(["metadata", "sourceModel", "values", "keys", "note"]);
  });

  test.each<[string, unknown, (string | number)[], string]>([
    ["missing sourceModel", { keys: [1], values: [1] }, ["sourceModel"], "sourceModel is required"],
    ["empty sourceModel", { sourceModel: "", keys: [1], values: [1] }, ["sourceModel"], "must not be empty"],
    ["blank sourceModel", { sourceModel: "   ", keys: [1], values: [1] }, ["sourceModel"], "must not be empty"],
    ["numeric sourceModel", { sourceModel: 7, keys: [1], values: [1] }, ["sourceModel"], "must be a string"],
    ["51-character sourceModel", { sourceModel: "m".repeat(51), keys: [1], values: [1] }, ["sourceModel"], "51 characters, the limit is 50"],
    ["missing keys", { sourceModel: "m", values: [1] }, ["keys"], "keys is required"],
    ["missing values", { sourceModel: "m", keys: [1] }, ["values"], "values is required"],
    ["ragged keys", { sourceModel: "m", keys: [[1, 2], [3]], values: [[1, 2], [3, 4]] }, ["keys", 1], "keys: row 1 has length 1, expected 2"],
    ["string in values", { sourceModel: "m", keys: [1, 2], values: [1, "2"] }, ["values", 1], "values: expected a finite number"],
    ["empty keys", { sourceModel: "m", keys: [], values: [1] }, ["keys"], "keys: tensor is empty"],
    ["keys not a tensor", { sourceModel: "m", keys: "abc", values: [1] }, ["keys"], "expected a nested array"],
    ["bad encoded values", { sourceModel: "m", keys: [1], values: { dtype: "float32", shape: [1], data: "!!!!!!==" } }, ["values", "data"], "values: invalid base64"],
    ["object without dtype", { sourceModel: "m", keys: [1], values: { shape: [1], data: "AAAAAA==" } }, ["values", "dtype"], "dtype must be one of"],
    ["encoded dtype", { sourceModel: "m", keys: [1], values: { dtype: "int4", shape: [1], data: "" } }, ["values", "dtype"], "dtype must be one of"],
    ["shape mismatch", { sourceModel: "m", keys: [[1, 2, 3]], values: [[1, 2], [3, 4]] }, ["values"], "values shape [2, 2] does not match keys shape [1, 3]"],
    ["mixed-form shape mismatch", { sourceModel: "m", keys: [1, 2], values: encoded("float32", [2, 1], [1, 2]) }, ["values"], "[2, 1] does not match keys shape [2]"],
    ["metadata not an object", { sourceModel: "m", keys: [1], values: [1], metadata: [1] }, ["metadata"], "metadata must be an object"],
    ["NaN in metadata", { sourceModel: "m", keys: [1], values: [1], metadata: { a: { b: [1, NaN] } } }, ["metadata", "a", "b", 1], "expected a JSON value, got NaN"],
    ["Date in an extra key", { sourceModel: "m", keys: [1], values: [1], when: new Date(0) }, ["when"], "expected a JSON value, got Date"],
    ["bigint in metadata", { sourceModel: "m", keys: [1], values: [1], metadata: { n: 1n } }, ["metadata", "n"], "got a bigint"],
  ])("rejects %s", (_name, doc, path, message) => {
    const r = analyzeKvCache(doc, limits);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const issue = r.issues.find((i) => JSON.stringify(i.path) === JSON.stringify(path));
    expect(issue, JSON.stringify(r.issues)).toBeDefined();
    expect(issue!.message).toContain(message);
    expect(issue!.code).toBe("invalid");
  });

  test.each([null, [1], "doc", 3, new Map()])("rejects a non-object document %#", (doc) => {
    expect(analyzeKvCache(doc, limits)).toMatchObject({ ok: false, issues: [{ path: [], code: "invalid" }] });
  });

  test("reports every problem at once", () => {
    const r = analyzeKvCache({ keys: [[1], [2, 3]], values: [NaN] }, limits);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.path)).toEqual([["sourceModel"], ["keys", 1], ["values", 0]]);
  });

  test("limits: each tensor and the sum of both", () => {
    const k = nested([10, 10]);
    expect(analyzeKvCache({ sourceModel: "m", keys: k, values: k }, { maxElements: 200 }).ok).toBe(true);
    const both = analyzeKvCache({ sourceModel: "m", keys: k, values: k }, { maxElements: 199 });
    expect(both).toMatchObject({ ok: false, issues: [{ path: [], code: "too_large" }] });
    if (!both.ok) expect(both.issues[0]!.message).toContain("hold 200 elements together, over the limit of 199");
    const one = analyzeKvCache({ sourceModel: "m", keys: k, values: encoded("float16", [10, 10], new Array(100).fill(1)) }, { maxElements: 50 });
    expect(one).toMatchObject({ ok: false, issues: [{ path: ["keys"], code: "too_large" }, { path: ["values", "shape"], code: "too_large" }] });
  });

  test("top-level keys whose value is undefined count as absent", () => {
    const p = parse({ sourceModel: "m", keys: [1], values: [2], metadata: undefined });
    expect(p.rest).toEqual({});
    expect(p.keyOrder).toEqual(["sourceModel", "keys", "values"]);
  });
});

describe("canonical safetensors form", () => {
  test("holds keys/values tensors and mx metadata", () => {
    const p = parse({ sourceModel: "m", keys: [[1, 2]], values: encoded("bfloat16", [1, 2], [3, 4]), metadata: { a: 1 } });
    const file = decodeSafetensors(kvCacheToSafetensors(p));
    expect(file.tensors.keys).toMatchObject({ dtype: "float64", shape: [1, 2] });
    expect(file.tensors.values).toMatchObject({ dtype: "bfloat16", shape: [1, 2] });
    expect(file.metadata).toEqual({
      "mx.format": "kv-cache/1",
      "mx.keys.form": "nested",
      "mx.values.form": "encoded",
      "mx.doc": '{"sourceModel":"m","metadata":{"a":1}}',
      "mx.order": '["sourceModel","keys","values","metadata"]',
    });
    expect(file.header.dataStart % 8).toBe(0);
  });

  test("deterministic: equal documents give equal bytes and hashes", () => {
    const json = JSON.stringify({ sourceModel: "m", keys: nested([2, 3, 4]), values: nested([2, 3, 4], 5), metadata: { x: [1, { y: 2 }] } });
    const a = kvCacheToSafetensors(parse(JSON.parse(json)));
    const b = kvCacheToSafetensors(parse(JSON.parse(json)));
    expect(sha256(a)).toBe(sha256(b));
    // A different value or key order is a different document.
    const other = kvCacheToSafetensors(parse({ ...JSON.parse(json), metadata: { x: [1, { y: 3 }] } }));
    expect(sha256(other)).not.toBe(sha256(a));
  });

  test.each([[[7]], [[3, 5]], [[2, 3, 4]], [[2, 2, 3, 5]]])("nested rank %j round-trips to identical JSON", (shape) => {
    const json = JSON.stringify({ sourceModel: "qwen", keys: nested(shape), values: nested(shape, 3) });
    expect(roundTrip(json)).toBe(json);
  });

  test("original key order, extra keys and odd values survive", () => {
    const json =
      '{"metadata":{"b":1,"a":[true,null,"x",{"z":{}}]},"values":[[0.1,1e-300],[123456789.12345679,-5]],' +
      '"zeta":"last-but-one?","sourceModel":"m","keys":[[1,2],[3,4]],"alpha":[]}';
    expect(roundTrip(json)).toBe(json);
  });

  test("a __proto__ key is kept as data, not turned into a prototype", () => {
    const json = '{"sourceModel":"m","keys":[1],"values":[2],"__proto__":{"polluted":true}}';
    expect(roundTrip(json)).toBe(json);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test.each(DTYPES)("encoded %s round-trips bit-exactly (same base64)", (dtype) => {
    const values = Array.from({ length: 24 }, (_, i) => (i - 11) * 0.37 + (i === 5 ? -0 : 0));
    const keys = encoded(dtype, [2, 3, 4], values);
    const v = encoded(dtype, [2, 3, 4], values.map((x) => x * 1e-3));
    const json = JSON.stringify({ sourceModel: "m", keys, values: v, metadata: { dtype } });
    expect(roundTrip(json)).toBe(json);
  });

  test("negative zero in a nested tensor comes back as 0", () => {
    expect(roundTrip('{"sourceModel":"m","keys":[-0,1],"values":[0,1]}')).toBe('{"sourceModel":"m","keys":[0,1],"values":[0,1]}');
  });

  test("kvCacheToDocument works on a hand-made ParsedKvCache without keyOrder", () => {
    const p = parse({ sourceModel: "m", keys: [1], values: [2], metadata: {} });
    delete p.keyOrder;
    expect(JSON.stringify(kvCacheToDocument(p))).toBe('{"sourceModel":"m","keys":[1],"values":[2],"metadata":{}}');
  });
});

describe("plain safetensors uploads", () => {
  const f = (dtype: (typeof DTYPES)[number], shape: number[], values: number[]) => ({
    dtype,
    shape,
    data: encodeFromFloat64(dtype, new Float64Array(values)),
  });

  test("become encoded tensors with sourceModel and metadata from __metadata__", () => {
    const file = encodeSafetensors(
      { keys: f("bfloat16", [2, 1], [1, 2]), values: f("float16", [2, 1], [3, 4]) },
      { sourceModel: "mistral-7b", format: "pt" },
    );
    const doc = safetensorsToKvCache(file);
    expect(doc).toEqual({
      sourceModel: "mistral-7b",
      keys: { dtype: "bfloat16", shape: [2, 1], data: encodeBase64(f("bfloat16", [2, 1], [1, 2]).data) },
      values: { dtype: "float16", shape: [2, 1], data: encodeBase64(f("float16", [2, 1], [3, 4]).data) },
      metadata: { format: "pt" },
    });
    expect(Object.keys(doc)).toEqual(["sourceModel", "keys", "values", "metadata"]);
    // The converted document passes the usual validation.
    expect(analyzeKvCache(doc, limits).ok).toBe(true);
  });

  test.each(DTYPES)("%s tensors map to the same dtype", (dtype) => {
    const file = encodeSafetensors({ keys: f(dtype, [3], [1, 2, 3]), values: f(dtype, [3], [4, 5, 6]) });
    const doc = safetensorsToKvCache(file);
    expect(doc).toMatchObject({ sourceModel: "unknown", keys: { dtype, shape: [3] }, values: { dtype } });
    expect(doc).not.toHaveProperty("metadata");
    // Publishing it and converting back is stable.
    expect(JSON.stringify(safetensorsToKvCache(kvCacheToSafetensors(parse(doc))))).toBe(JSON.stringify(doc));
  });

  test.each<[string, () => Uint8Array, RegExp]>([
    ["an extra tensor", () => encodeSafetensors({ keys: f("float32", [1], [1]), values: f("float32", [1], [1]), bias: f("float32", [1], [1]) }), /unexpected tensor "bias"/],
    ["no values", () => encodeSafetensors({ keys: f("float32", [1], [1]) }), /needs a tensor named "values"/],
    ["a scalar tensor", () => encodeSafetensors({ keys: f("float32", [], [1]), values: f("float32", [1], [1]) }), /rank 1 to 4/],
    ["an empty dimension", () => encodeSafetensors({ keys: f("float32", [0], []), values: f("float32", [1], [1]) }), /no empty dimension/],
    ["an unknown mx.format", () => encodeSafetensors({ keys: f("float32", [1], [1]), values: f("float32", [1], [1]) }, { "mx.format": "kv-cache/9" }), /unsupported mx.format/],
    [
      "a nested form that is not F64",
      () =>
        encodeSafetensors(
          { keys: f("float32", [1], [1]), values: f("float32", [1], [1]) },
          { "mx.format": "kv-cache/1", "mx.keys.form": "nested", "mx.values.form": "encoded", "mx.doc": '{"sourceModel":"m"}', "mx.order": '["sourceModel","keys","values"]' },
        ),
      /must be F64/,
    ],
    [
      "an mx.order that misses a key",
      () =>
        encodeSafetensors(
          { keys: f("float64", [1], [1]), values: f("float64", [1], [1]) },
          { "mx.format": "kv-cache/1", "mx.keys.form": "nested", "mx.values.form": "nested", "mx.doc": '{"sourceModel":"m","x":1}', "mx.order": '["sourceModel","keys","values"]' },
        ),
      /mx.order/,
    ],
    ["garbage", () => new TextEncoder().encode("not a safetensors file"), /header length/],
  ])("rejects %s", (_name, make, message) => {
    const file = make();
    expect(() => safetensorsToParsedKvCache(file)).toThrow(SafetensorsError);
    expect(() => safetensorsToKvCache(file)).toThrow(message);
  });
});
