import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { buildKvCacheSafetensors, buildSafetensors, encodeFromFloat64, readSafetensorsHeader, type Dtype } from "@memory-exchange/shared";
import { parseByteRange } from "../src/payloads/byte-range.js";
import { ChunkWriter } from "../src/payloads/chunk-writer.js";
import { FiniteScanner, TensorDataError } from "../src/payloads/finite-scanner.js";
import { kvCacheFromHeader } from "../src/payloads/kv-cache-header.js";

/** The pure pieces of the streamed upload and download, fed in pieces of every size. */

function header(file: Uint8Array) {
  const r = readSafetensorsHeader(file);
  if (!r.ok) throw new Error("bad test file");
  return r;
}

/** Feeds the data buffer of `file` to a scanner in pieces cut at `cuts`. */
function scan(file: Uint8Array, cuts: number[]): void {
  const h = header(file);
  const data = file.subarray(h.dataStart);
  const scanner = new FiniteScanner(h);
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  let at = 0;
  for (const p of [...points, data.length]) {
    scanner.push(data.subarray(at, p));
    at = p;
  }
  scanner.finish();
}

const DTYPES: Dtype[] = ["float16", "bfloat16", "float32", "float64"];

describe("FiniteScanner", () => {
  test("finds the first non-finite element wherever the pieces split it, and accepts finite data", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...DTYPES),
        fc.constantFrom(...DTYPES),
        fc.integer({ min: 1, max: 40 }),
        fc.option(fc.record({ tensor: fc.constantFrom("keys", "values"), index: fc.nat(), bad: fc.constantFrom(Number.NaN, Infinity, -Infinity) })),
        fc.array(fc.nat(), { maxLength: 12 }),
        (keysType, valuesType, n, poison, cuts) => {
          const values = (seed: number) => Float64Array.from({ length: n }, (_, i) => (i - seed) * 0.75);
          const k = values(3);
          const v = values(-2);
          if (poison) (poison.tensor === "keys" ? k : v)[poison.index % n] = poison.bad;
          const file = buildSafetensors({
            keys: { dtype: keysType, shape: [n], data: encodeFromFloat64(keysType, k) },
            values: { dtype: valuesType, shape: [n], data: encodeFromFloat64(valuesType, v) },
          });
          if (!poison) {
            scan(file, cuts);
            return;
          }
          let error: unknown;
          try {
            scan(file, cuts);
          } catch (e) {
            error = e;
          }
          expect(error).toBeInstanceOf(TensorDataError);
          expect((error as Error).message).toContain(`element ${poison.index % n} of tensor "${poison.tensor}"`);
        },
      ),
      { numRuns: 400 },
    );
  });

  test("a body that ends early or runs past the last tensor is refused", () => {
    const file = buildKvCacheSafetensors({ keys: { dtype: "float32", shape: [4], data: new Float32Array(4) }, values: { dtype: "float32", shape: [4], data: new Float32Array(4) } });
    const h = header(file);
    const data = file.subarray(h.dataStart);
    const short = new FiniteScanner(h);
    short.push(data.subarray(0, data.length - 1));
    expect(() => short.finish()).toThrow(/ends early/);
    const long = new FiniteScanner(h);
    expect(() => long.push(new Uint8Array([...data, 0]))).toThrow(/past the end/);
  });
});

describe("ChunkWriter", () => {
  test("cuts any sequence of writes into exact chunks, in order, with at most one write in flight", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 20 }), async (sizes) => {
        const written: { seq: number; data: number[] }[] = [];
        let inFlight = 0;
        let maxInFlight = 0;
        const writer = new ChunkWriter(async (seq, data) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          const copy = Array.from(data);
          await new Promise((r) => setTimeout(r, 0));
          written.push({ seq, data: copy });
          inFlight--;
        }, 16);
        const all: number[] = [];
        for (const size of sizes) {
          const piece = Uint8Array.from({ length: size }, (_, i) => (all.length + i) % 256);
          all.push(...piece);
          await writer.write(piece);
        }
        await writer.end();
        expect(maxInFlight).toBeLessThanOrEqual(1);
        expect(written.map((w) => w.seq)).toEqual(written.map((_, i) => i));
        expect(written.slice(0, -1).every((w) => w.data.length === 16)).toBe(true);
        expect(written.flatMap((w) => w.data)).toEqual(all);
        expect(writer.chunkCount).toBe(Math.ceil(all.length / 16));
      }),
      { numRuns: 100 },
    );
  });

  test("a failed write surfaces on the next write or at the end", async () => {
    const writer = new ChunkWriter(async () => {
      throw new Error("disk full");
    }, 4);
    await writer.write(new Uint8Array(4));
    await expect(writer.write(new Uint8Array(4))).rejects.toThrow("disk full");
  });
});

describe("parseByteRange", () => {
  test.each([
    [undefined, { kind: "whole" }],
    ["bytes=0-9", { kind: "partial", start: 0, end: 9 }],
    ["bytes=90-", { kind: "partial", start: 90, end: 99 }],
    ["bytes=-10", { kind: "partial", start: 90, end: 99 }],
    ["bytes=-1000", { kind: "partial", start: 0, end: 99 }],
    ["bytes=50-5000", { kind: "partial", start: 50, end: 99 }],
    ["bytes=100-", { kind: "unsatisfiable" }],
    ["bytes=0-1,4-5", { kind: "whole" }],
    ["items=0-1", { kind: "whole" }],
    ["garbage", { kind: "whole" }],
  ] as const)("%s", (header, expected) => {
    expect(parseByteRange(header, 100)).toEqual(expected);
  });
});

describe("kvCacheFromHeader", () => {
  const tensor = (shape: number[]) => ({ dtype: "float32" as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });

  test("a plain file: sourceModel and the other metadata entries, as the JSON form will show them", () => {
    const file = buildKvCacheSafetensors({ sourceModel: "llama-3-8b", keys: tensor([2, 3]), values: tensor([2, 3]), metadata: { tokenCount: "2" } });
    const r = kvCacheFromHeader(header(file));
    expect(r).toEqual({
      ok: true,
      summary: {
        sourceModel: "llama-3-8b",
        rest: { metadata: { tokenCount: "2" } },
        tensors: { keys: { dtype: "float32", shape: [2, 3] }, values: { dtype: "float32", shape: [2, 3] } },
        hasExtraTensors: false,
      },
    });
  });

  test.each([
    ["values missing", buildSafetensors({ keys: tensor([2]) }), "values"],
    ["rank 5", buildSafetensors({ keys: tensor([1, 1, 1, 1, 2]), values: tensor([1, 1, 1, 1, 2]) }), "keys"],
    ["an empty dimension", buildSafetensors({ keys: tensor([0, 2]), values: tensor([0, 2]) }), "keys"],
    ["shapes differ", buildSafetensors({ keys: tensor([2, 3]), values: tensor([3, 2]) }), "values"],
    ["a bad mx.format", buildSafetensors({ keys: tensor([2]), values: tensor([2]) }, { "mx.format": "other/9" }), "__metadata__"],
    ["an empty sourceModel", buildSafetensors({ keys: tensor([2]), values: tensor([2]) }, { sourceModel: " " }), "__metadata__.sourceModel"],
  ])("refuses %s, naming the field", (_, file, path) => {
    const r = kvCacheFromHeader(header(file));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]!.path).toBe(path);
  });
});
