import { describe, expect, test } from "vitest";
import {
  buildKvCacheSafetensors,
  buildSafetensors,
  decodeSafetensors,
  encodeFromFloat32,
  encodeSafetensors,
  kvCacheSafetensorsLayout,
  safetensorsLayout,
  safetensorsToKvCache,
  tensorBytes,
} from "../src/tensor/index.js";

describe("tensorBytes", () => {
  test("Float32Array values are converted to the dtype (round to nearest even), Uint16Array is raw bits, Uint8Array is taken as is", () => {
    const values = new Float32Array([1, -2.5, 1 / 3, 65504]);
    expect(tensorBytes({ dtype: "float16", shape: [4], data: values })).toEqual(encodeFromFloat32("float16", values));
    expect(tensorBytes({ dtype: "bfloat16", shape: [4], data: values })).toEqual(encodeFromFloat32("bfloat16", values));
    expect(Array.from(tensorBytes({ dtype: "float16", shape: [1], data: new Uint16Array([0x3c00]) }))).toEqual([0x00, 0x3c]);
    const raw = new Uint8Array([1, 2, 3, 4]);
    expect(tensorBytes({ dtype: "float32", shape: [1], data: raw })).toBe(raw);
    expect(() => tensorBytes({ dtype: "float32", shape: [1], data: new Uint16Array([1, 2]) })).toThrow(/float16 or bfloat16/);
  });

  test("float64 values round once to float16", () => {
    const bytes = tensorBytes({ dtype: "float16", shape: [1], data: new Float64Array([1 + 2 ** -11 + 2 ** -40]) });
    expect(new DataView(bytes.buffer, bytes.byteOffset).getUint16(0, true)).toBe(0x3c01); // just above the halfway point rounds up
  });
});

describe("buildKvCacheSafetensors", () => {
  test("a spec-conformant file: keys and values (and extra tensors), sourceModel in __metadata__", () => {
    const file = buildKvCacheSafetensors({
      sourceModel: "llama-3-8b",
      keys: { dtype: "bfloat16", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      values: { dtype: "float32", shape: [2, 2], data: new Float32Array([5, 6, 7, 8]) },
      tensors: { mask: { dtype: "float16", shape: [2], data: new Float32Array([1, 0]) } },
      metadata: { tokenCount: "2" },
    });
    const decoded = decodeSafetensors(file);
    expect(decoded.metadata).toEqual({ sourceModel: "llama-3-8b", tokenCount: "2" });
    expect(Object.keys(decoded.tensors).sort()).toEqual(["keys", "mask", "values"]);
    expect(decoded.tensors.values!.shape).toEqual([2, 2]);
    expect(Array.from(new Float32Array(decoded.tensors.values!.data.slice().buffer))).toEqual([5, 6, 7, 8]);
  });

  test("the JSON form of a plain file: encoded tensors, sourceModel, other metadata under metadata", () => {
    const file = buildKvCacheSafetensors({
      sourceModel: "m",
      keys: { dtype: "float32", shape: [1], data: new Float32Array([1]) },
      values: { dtype: "float32", shape: [1], data: new Float32Array([2]) },
      metadata: { note: "x" },
    });
    expect(safetensorsToKvCache(file)).toEqual({
      sourceModel: "m",
      keys: { dtype: "float32", shape: [1], data: "AACAPw==" },
      values: { dtype: "float32", shape: [1], data: "AAAAQA==" },
      metadata: { note: "x" },
    });
  });

  test("refuses mismatched shapes, wrong lengths, a clashing extra tensor and a bad sourceModel", () => {
    const t = (shape: number[], n = shape.reduce((a, b) => a * b, 1)) => ({ dtype: "float32" as const, shape, data: new Float32Array(n) });
    expect(() => buildKvCacheSafetensors({ keys: t([2, 3]), values: t([3, 2]) })).toThrow(/does not match/);
    expect(() => buildKvCacheSafetensors({ keys: t([2], 3), values: t([2], 3) })).toThrow(/needs 8 bytes/);
    expect(() => buildKvCacheSafetensors({ keys: t([1]), values: t([1]), tensors: { keys: t([1]) } })).toThrow(/clashes/);
    expect(() => buildKvCacheSafetensors({ sourceModel: "", keys: t([1]), values: t([1]) })).toThrow(/sourceModel/);
  });
});

describe("safetensorsLayout", () => {
  test("the header is byte-identical to the one encodeSafetensors writes, so a streamed file equals the built one", () => {
    const specs = {
      values: { dtype: "float16" as const, shape: [3, 5] },
      keys: { dtype: "float16" as const, shape: [3, 5] },
      "z extra": { dtype: "float64" as const, shape: [7] },
    };
    const metadata = { sourceModel: "llama-3-8b", b: "2", a: "1" };
    const layout = safetensorsLayout(specs, metadata);
    const data = Object.fromEntries(
      Object.entries(specs).map(([name, s]) => [name, new Uint8Array(s.shape.reduce((a, b) => a * b, 1) * (s.dtype === "float16" ? 2 : 8)).fill(name.length)]),
    );
    const whole = encodeSafetensors(
      Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, { ...s, data: data[name]! }])),
      metadata,
    );
    expect(layout.order).toEqual(["keys", "values", "z extra"]);
    expect(layout.size).toBe(whole.length);
    const streamed = new Uint8Array(layout.size);
    streamed.set(layout.header);
    let at = layout.header.length;
    for (const name of layout.order) {
      expect(layout.byteLengths[name]).toBe(data[name]!.length);
      streamed.set(data[name]!, at);
      at += data[name]!.length;
    }
    expect(streamed).toEqual(whole);
  });

  test("kvCacheSafetensorsLayout matches buildKvCacheSafetensors", () => {
    const keys = { dtype: "float32" as const, shape: [2], data: new Float32Array([1, 2]) };
    const values = { dtype: "float32" as const, shape: [2], data: new Float32Array([3, 4]) };
    const built = buildKvCacheSafetensors({ sourceModel: "m", keys, values });
    const layout = kvCacheSafetensorsLayout({ sourceModel: "m", keys, values });
    expect(built.subarray(0, layout.header.length)).toEqual(layout.header);
    expect(layout.size).toBe(built.length);
    expect(buildSafetensors({ keys, values }, { sourceModel: "m" })).toEqual(built);
  });
});
