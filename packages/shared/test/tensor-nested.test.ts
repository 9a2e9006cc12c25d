import { describe, expect, test } from "vitest";
import { analyzeNested, buildNested, flattenNested } from "../src/tensor/index.js";

const limits = { maxElements: 1_000_000, maxRank: 4 };

function fromJson(text: string): unknown {
  return JSON.parse(text) as unknown;
}

describe("analyzeNested accepts rectangular tensors", () => {
  test.each([
    ["[1]", [1]],
    ["[1.5, -2, 0]", [3]],
    ["[[1, 2, 3], [4, 5, 6]]", [2, 3]],
    ["[[[1], [2]], [[3], [4]], [[5], [6]]]", [3, 2, 1]],
    ["[[[[1, 2]]]]", [1, 1, 1, 2]],
  ])("%s has shape %j", (json, shape) => {
    const r = analyzeNested(fromJson(json), limits);
    expect(r).toEqual({ ok: true, shape, elementCount: shape.reduce((a, b) => a * b, 1) });
  });

  test("maxRank defaults to 4", () => {
    expect(analyzeNested([[[[1]]]], { maxElements: 10 }).ok).toBe(true);
    expect(analyzeNested([[[[[1]]]]], { maxElements: 10 }).ok).toBe(false);
  });
});

describe("analyzeNested rejects bad tensors with a path to the offending element", () => {
  test.each<[string, unknown, (string | number)[], string]>([
    ["ragged row", [[1, 2, 3, 4], [1, 2, 3]], [1], "row 1 has length 3, expected 4"],
    ["ragged first row", [[1, 2, 3], [1, 2, 3, 4]], [1], "row 1 has length 4, expected 3"],
    ["ragged deep", [[[1, 2], [3, 4]], [[5, 6], [7]]], [1, 1], "row [1, 1] has length 1, expected 2"],
    ["number where a row belongs", [[1, 2], 3], [1], "expected an array of length 2, got 3"],
    ["row where a number belongs", [[1, 2], [3, [4]]], [1, 1], "expected a finite number, got an array"],
    ["string", [[1, 2], [3, "4"]], [1, 1], "expected a finite number, got a string"],
    ["null", [1, null], [1], "expected a finite number, got null"],
    ["boolean", [true], [0], "expected a finite number, got a boolean"],
    ["object", [[{}]], [0, 0], "expected a finite number, got an object"],
    ["NaN", [[0, 0, 0, NaN]], [0, 3], "expected a finite number, got NaN"],
    ["Infinity", [[[1, Infinity]]], [0, 0, 1], "expected a finite number, got Infinity"],
    ["-Infinity", [[[[1, 2], [3, -Infinity]]]], [0, 0, 1, 1], "expected a finite number, got -Infinity"],
    ["hole in a sparse array", [1, , 3], [1], "expected a finite number, got undefined"], // eslint-disable-line no-sparse-arrays
    ["empty tensor", [], [], "tensor is empty"],
    ["empty row", [[]], [0], "row 0 is empty"],
    ["empty deeper row", [[[]]], [0, 0], "row [0, 0] is empty"],
    ["rank 5", [[[[[1]]]]], [0, 0, 0, 0], "rank exceeds the maximum of 4"],
    ["not an array", { a: 1 }, [], "expected a nested array of numbers, got an object"],
    ["a scalar", 3, [], "expected a nested array of numbers, got 3"],
    ["a string", "[1,2]", [], "got a string"],
    ["null tensor", null, [], "got null"],
    ["typed array", new Float64Array([1]), [], "got an object"],
  ])("%s", (_name, value, path, message) => {
    const r = analyzeNested(value, limits);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.path).toEqual(path);
    expect(r.message).toContain(message);
    expect(r.code).toBe("invalid");
  });

  test("JSON 1e400 parses to Infinity and is rejected", () => {
    const r = analyzeNested(fromJson("[[1, 2], [3, 1e400]]"), limits);
    expect(r).toMatchObject({ ok: false, path: [1, 1], code: "invalid" });
    expect(analyzeNested(fromJson("[-1e400]"), limits)).toMatchObject({ ok: false, path: [0] });
  });

  test("the element limit is checked before walking", () => {
    expect(analyzeNested([[1, 2, 3], [4, 5, 6]], { maxElements: 6 }).ok).toBe(true);
    expect(analyzeNested([[1, 2, 3], [4, 5, 6]], { maxElements: 5 })).toMatchObject({
      ok: false,
      path: [],
      code: "too_large",
    });
    // A sparse array of 2^32 - 1 slots: walking it would take minutes; rejected at once.
    const huge: number[] = [];
    huge.length = 2 ** 32 - 1;
    const r = analyzeNested([huge, huge], { maxElements: 16_000_000 });
    expect(r).toMatchObject({ ok: false, code: "too_large" });
    if (!r.ok) expect(r.message).toContain("over the limit of 16000000");
  });

  test("ragged rows cannot sneak past the limit: rows are checked against the first row", () => {
    const r = analyzeNested([[1], [1, 2, 3, 4, 5, 6, 7, 8]], { maxElements: 4 });
    expect(r).toMatchObject({ ok: false, path: [1], message: "row 1 has length 8, expected 1" });
  });

  test("maxRank above 4 is honoured by the generic walk", () => {
    const t6 = [[[[[[1, 2]], [[3, 4]]]]]];
    expect(analyzeNested(t6, { maxElements: 100, maxRank: 6 })).toEqual({ ok: true, shape: [1, 1, 1, 2, 1, 2], elementCount: 4 });
    const bad = [[[[[[1, 2]], [[3, NaN]]]]]];
    expect(analyzeNested(bad, { maxElements: 100, maxRank: 6 })).toMatchObject({ ok: false, path: [0, 0, 0, 1, 0, 1] });
  });
});

describe("flattenNested / buildNested", () => {
  const values = [0.1, 1e-300, 123456789.123456789, 42, -7, 5e-324, 1.7976931348623157e308, -0.000123, 2 ** 53, 1 / 3];
  const pick = (i: number): number => values[i % values.length]!;

  test.each([[[10]], [[5, 2]], [[2, 3, 4]], [[2, 1, 3, 5]]])("shape %j round-trips exactly", (shape) => {
    let i = 0;
    const make = (d: number): unknown[] =>
      Array.from({ length: shape[d]! }, () => (d === shape.length - 1 ? pick(i++) : make(d + 1)));
    const tensor = make(0);
    const json = JSON.stringify(tensor);
    const parsed = fromJson(json);
    const r = analyzeNested(parsed, limits);
    expect(r).toMatchObject({ ok: true, shape });
    const flat = flattenNested(parsed, shape);
    expect(flat.length).toBe(shape.reduce((a, b) => a * b, 1));
    expect(JSON.stringify(buildNested(flat, shape))).toBe(json);
  });

  test("flatten is row-major", () => {
    expect(Array.from(flattenNested([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], [2, 2, 2]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test("-0 is stored as 0", () => {
    const flat = flattenNested([-0, 1], [2]);
    expect(Object.is(flat[0], 0)).toBe(true);
  });

  test("buildNested rejects data that does not fit the shape", () => {
    expect(() => buildNested(new Float64Array(5), [2, 3])).toThrow(RangeError);
    expect(() => buildNested(new Float64Array(1), [])).toThrow(RangeError);
  });
});
