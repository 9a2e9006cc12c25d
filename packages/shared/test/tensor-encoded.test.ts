import { describe, expect, test } from "vitest";
import {
  analyzeEncoded,
  DTYPES,
  encodeBase64,
  encodedTensorSchema,
  encodeFromFloat64,
  isEncodedTensor,
} from "../src/tensor/index.js";

const limits = { maxElements: 1000 };

function encoded(dtype: (typeof DTYPES)[number], shape: number[], values: number[]) {
  return { dtype, shape, data: encodeBase64(encodeFromFloat64(dtype, new Float64Array(values))) };
}

describe("analyzeEncoded", () => {
  test.each(DTYPES)("accepts %s and returns the decoded bytes", (dtype) => {
    const t = encoded(dtype, [2, 3], [1, 2, 3, 4, 5, 6]);
    const r = analyzeEncoded(t, limits);
    expect(r).toMatchObject({ ok: true, dtype, shape: [2, 3], elementCount: 6 });
    if (r.ok) expect(encodeBase64(r.bytes)).toBe(t.data);
  });

  test.each<[string, unknown, (string | number)[], string, "invalid" | "too_large"]>([
    ["unknown dtype", { dtype: "int8", shape: [1], data: "AA==" }, ["dtype"], "dtype must be one of", "invalid"],
    ["extra key", { ...encoded("float32", [1], [1]), scale: 2 }, [], "scale", "invalid"],
    ["missing data", { dtype: "float32", shape: [1] }, ["data"], "data must be a base64 string", "invalid"],
    ["empty shape", { dtype: "float32", shape: [], data: "" }, ["shape"], "at least one dimension", "invalid"],
    ["rank 5", { dtype: "float32", shape: [1, 1, 1, 1, 1], data: "AAAAAA==" }, ["shape"], "rank exceeds", "invalid"],
    ["zero dimension", { dtype: "float32", shape: [2, 0], data: "" }, ["shape", 1], "positive", "invalid"],
    ["fractional dimension", { dtype: "float32", shape: [1.5], data: "" }, ["shape", 0], "integers", "invalid"],
    ["unsafe dimension", { dtype: "float32", shape: [2 ** 60], data: "" }, ["shape", 0], "integers", "invalid"],
    ["too many elements", { dtype: "float16", shape: [10, 101], data: "" }, ["shape"], "over the limit of 1000", "too_large"],
    ["too few bytes", { dtype: "float32", shape: [2], data: "AAAAAA==" }, ["data"], "data decodes to 4 bytes; shape [2] of float32 needs 8 bytes", "invalid"],
    ["bad base64", { dtype: "float32", shape: [1], data: "AA*AAA==" }, ["data"], "invalid base64 character", "invalid"],
    ["unpadded base64", { dtype: "float16", shape: [1], data: "AAA" }, ["data"], "multiple of 4", "invalid"],
    ["NaN in float32", encoded("float32", [3], [1, NaN, 2]), ["data"], "element 1 is not a finite number", "invalid"],
    ["Infinity in float16", encoded("float16", [2], [1, 1e6]), ["data"], "element 1 is not a finite number", "invalid"],
    ["-Infinity in bfloat16", encoded("bfloat16", [1], [-Infinity]), ["data"], "element 0", "invalid"],
    ["NaN in float64", encoded("float64", [2, 2], [1, 2, 3, NaN]), ["data"], "element 3", "invalid"],
  ])("rejects %s", (_name, value, path, message, code) => {
    const r = analyzeEncoded(value, limits);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.path).toEqual(path);
    expect(r.message).toContain(message);
    expect(r.code).toBe(code);
  });

  test("isEncodedTensor tells the two forms apart", () => {
    expect(isEncodedTensor({ dtype: "float16" })).toBe(true);
    expect(isEncodedTensor({ dtype: undefined })).toBe(true);
    expect(isEncodedTensor([[1]])).toBe(false);
    expect(isEncodedTensor({ shape: [1] })).toBe(false);
    expect(isEncodedTensor(null)).toBe(false);
    expect(isEncodedTensor(new (class { dtype = "float16"; })())).toBe(false);
  });

  test("the schema is strict and types the compact form", () => {
    expect(encodedTensorSchema.safeParse({ dtype: "float16", shape: [4], data: "" }).success).toBe(true);
    expect(encodedTensorSchema.safeParse({ dtype: "float16", shape: [4], data: "", x: 1 }).success).toBe(false);
    expect(encodedTensorSchema.safeParse({ dtype: "float16", shape: [-1], data: "" }).success).toBe(false);
  });
});
