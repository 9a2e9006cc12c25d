import { execFileSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { alignmentFlops, alignmentKernelBackend, alignmentMetrics, matmulF32, matmulF64 } from "../src/alignment/index.js";
import { matmulF32Js, matmulF64Js } from "../src/alignment/kernel-js.js";
import { matmulWasm, wasmSimdAvailable } from "../src/alignment/kernel-wasm.js";

/** Deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values spread over several orders of magnitude and both signs, so rounding differences show. */
function randomArray<T extends Float64Array | Float32Array>(array: T, seed: number): T {
  const next = rng(seed);
  for (let i = 0; i < array.length; i++) array[i] = (next() - 0.5) * 2 ** Math.floor(next() * 12 - 6);
  return array;
}

/** The reference the F64 kernel must match bit for bit: sum over i ascending, from 0. */
function naiveF64(x: Float64Array, rows: number, k: number, w: Float64Array, n: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += x[r * k + i]! * w[i * n + j]!;
      out[r * n + j] = s;
    }
  }
  return out;
}

/** Float32 reference: every product and every partial sum rounded to float32, i ascending. */
function naiveF32(x: Float32Array, rows: number, k: number, w: Float32Array, n: number): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < k; i++) s = Math.fround(s + Math.fround(x[r * k + i]! * w[i * n + j]!));
      out[r * n + j] = s;
    }
  }
  return out;
}

/** Bitwise equality (distinguishes -0 from +0), reporting the first difference. */
function expectBitIdentical(actual: Float64Array | Float32Array, expected: Float64Array | Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const a = new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
  let firstDiff = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      firstDiff = Math.floor(i / actual.BYTES_PER_ELEMENT);
      break;
    }
  }
  expect(firstDiff === -1 ? "identical" : `differs at ${firstDiff}: ${actual[firstDiff]} vs ${expected[firstDiff]}`).toBe(
    "identical",
  );
}

function hasNumpy(): boolean {
  try {
    execFileSync("python3", ["-c", "import numpy"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Applies W to each last-axis vector of a nested array the slow, obvious way. */
function applyNested(value: unknown, w: number[][]): unknown {
  const v = value as unknown[];
  if (typeof v[0] === "number") {
    const x = v as number[];
    return w[0]!.map((_, j) => x.reduce((s, xi, i) => s + xi * w[i]![j]!, 0));
  }
  return v.map((inner) => applyNested(inner, w));
}

function nestedRandom(shape: number[], next: () => number): unknown {
  const [size, ...rest] = shape;
  return Array.from({ length: size! }, () => (rest.length === 0 ? Math.round(next() * 20 - 10) / 4 : nestedRandom(rest, next)));
}

const SIZES: Array<[rows: number, k: number, n: number]> = [
  [37, 129, 65], // odd sizes: partial row and column tiles
  [5, 600, 7], // k spans several k-blocks
  [8, 16, 8], // exact tiles only
  [1, 1, 1],
  [3, 2, 1],
  [1, 300, 9],
  [6, 5, 3],
];

type F64Impl = (x: Float64Array, rows: number, k: number, w: Float64Array, n: number) => Float64Array;
type F32Impl = (x: Float32Array, rows: number, k: number, w: Float32Array, n: number) => Float32Array;

function viaWasm<T extends Float64Array | Float32Array>(x: T, rows: number, k: number, w: T, n: number, out: T, chunkBytes?: number): T {
  if (!matmulWasm(x, rows, k, w, n, out, chunkBytes)) throw new Error("WebAssembly SIMD path unavailable");
  return out;
}

/** Every implementation must meet the same bit-exact contract. */
const IMPLEMENTATIONS: Array<[name: string, f64: F64Impl, f32: F32Impl]> = [
  ["public API", (x, r, k, w, n) => matmulF64(x, r, k, w, n), (x, r, k, w, n) => matmulF32(x, r, k, w, n)],
  [
    "plain JS",
    (x, r, k, w, n) => matmulF64Js(x, r, k, w, n, new Float64Array(r * n)),
    (x, r, k, w, n) => matmulF32Js(x, r, k, w, n, new Float32Array(r * n)),
  ],
  [
    "WebAssembly SIMD",
    (x, r, k, w, n) => viaWasm(x, r, k, w, n, new Float64Array(r * n)),
    (x, r, k, w, n) => viaWasm(x, r, k, w, n, new Float32Array(r * n)),
  ],
  [
    "WebAssembly SIMD, 64 KiB chunks",
    (x, r, k, w, n) => viaWasm(x, r, k, w, n, new Float64Array(r * n), 64 * 1024),
    (x, r, k, w, n) => viaWasm(x, r, k, w, n, new Float32Array(r * n), 64 * 1024),
  ],
];

const CASES = IMPLEMENTATIONS.flatMap(([name, f64, f32]) => SIZES.map(([rows, k, n]) => ({ name, f64, f32, rows, k, n })));

test("Node runs the WebAssembly SIMD kernels", () => {
  expect(wasmSimdAvailable()).toBe(true);
  expect(alignmentKernelBackend()).toBe("wasm-simd");
});

describe("matmulF64 / matmulF32", () => {
  test("hand-computed 2×3 · 3×2", () => {
    const x = [1, 2, 3, 4, 5, 6];
    const w = [7, 8, 9, 10, 11, 12];
    const expected = [58, 64, 139, 154];
    expect(Array.from(matmulF64(Float64Array.from(x), 2, 3, Float64Array.from(w), 2))).toEqual(expected);
    expect(Array.from(matmulF32(Float32Array.from(x), 2, 3, Float32Array.from(w), 2))).toEqual(expected);
  });

  test("a 3×3 identity returns the input and a 3×1 projection sums columns", () => {
    const x = Float64Array.from([1.5, -2, 0.25, 3, 4, 5]);
    const identity = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(Array.from(matmulF64(x, 2, 3, identity, 3))).toEqual(Array.from(x));
    expect(Array.from(matmulF64(x, 2, 3, Float64Array.from([1, 1, 1]), 1))).toEqual([-0.25, 12]);
  });

  test.each([
    ["rank 2 [tokens][dim]", [7, 6], 5],
    ["rank 4 [layers][heads][tokens][head_dim]", [2, 3, 5, 8], 3],
  ])("%s tensor flattened to rows × k maps every last-axis vector", (_name, shape, n) => {
    const next = rng(7);
    const k = shape[shape.length - 1]!;
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const nested = nestedRandom(shape, next);
    const wNested = Array.from({ length: k }, () => Array.from({ length: n }, () => Math.round(next() * 16 - 8) / 8));
    const x = Float64Array.from((nested as unknown[]).flat(shape.length) as number[]);
    expect(x.length).toBe(rows * k);
    const w = Float64Array.from(wNested.flat());
    const expected = ((applyNested(nested, wNested) as unknown[]).flat(shape.length) as number[]);
    // Small dyadic values: every product and sum is exact, so float32 must agree too.
    expect(Array.from(matmulF64(x, rows, k, w, n))).toEqual(expected);
    expect(Array.from(matmulF32(Float32Array.from(x), rows, k, Float32Array.from(w), n))).toEqual(expected);
  });

  test.each(CASES)("$name: F64 rows=$rows k=$k n=$n is bit-identical to a naive triple loop", ({ f64, rows, k, n }) => {
    const x = randomArray(new Float64Array(rows * k), rows * 1000 + k);
    const w = randomArray(new Float64Array(k * n), k * 1000 + n);
    expectBitIdentical(f64(x, rows, k, w, n), naiveF64(x, rows, k, w, n));
  });

  test.each(CASES)("$name: F32 rows=$rows k=$k n=$n is bit-identical to a float32-accumulating reference", ({ f32, rows, k, n }) => {
    const x = randomArray(new Float32Array(rows * k), rows * 1000 + k);
    const w = randomArray(new Float32Array(k * n), k * 1000 + n);
    expectBitIdentical(f32(x, rows, k, w, n), naiveF32(x, rows, k, w, n));
  });

  test.each(IMPLEMENTATIONS)("%s: F32 really accumulates in float32 (differs from a float64 sum rounded once)", (_name, _f64, impl) => {
    const [rows, k, n] = [37, 129, 65];
    const x = randomArray(new Float32Array(rows * k), 1);
    const w = randomArray(new Float32Array(k * n), 2);
    const f32 = impl(x, rows, k, w, n);
    const f64Rounded = Float32Array.from(naiveF64(Float64Array.from(x), rows, k, Float64Array.from(w), n));
    let differing = 0;
    for (let i = 0; i < f32.length; i++) if (f32[i] !== f64Rounded[i]) differing++;
    expect(differing).toBeGreaterThan(0);
  });

  test("out is overwritten (not accumulated into) and returned", () => {
    const [rows, k, n] = [9, 300, 6];
    const x = randomArray(new Float64Array(rows * k), 3);
    const w = randomArray(new Float64Array(k * n), 4);
    const out = new Float64Array(rows * n).fill(123);
    expect(matmulF64(x, rows, k, w, n, out)).toBe(out);
    expectBitIdentical(out, naiveF64(x, rows, k, w, n));
    const out32 = new Float32Array(rows * n).fill(-7);
    const x32 = Float32Array.from(x);
    const w32 = Float32Array.from(w);
    expect(matmulF32(x32, rows, k, w32, n, out32)).toBe(out32);
    expectBitIdentical(out32, naiveF32(x32, rows, k, w32, n));
  });

  test("empty dimensions: no rows, no columns, k = 0 gives zeros", () => {
    expect(matmulF64(new Float64Array(0), 0, 4, new Float64Array(8), 2).length).toBe(0);
    expect(matmulF64(new Float64Array(6), 3, 2, new Float64Array(0), 0).length).toBe(0);
    expect(Array.from(matmulF32(new Float32Array(0), 2, 0, new Float32Array(0), 3))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test("inconsistent sizes throw RangeError naming the array", () => {
    const x = new Float64Array(6);
    const w = new Float64Array(6);
    expect(() => matmulF64(x, 2, 3, w, 3)).toThrow(/w has 6 elements, expected k × n = 3 × 3 = 9/);
    expect(() => matmulF64(x, 3, 3, w, 2)).toThrow(/x has 6 elements/);
    expect(() => matmulF64(x, 2, 3, w, 2, new Float64Array(3))).toThrow(/out has 3 elements/);
    expect(() => matmulF32(new Float32Array(6), 2.5, 3, new Float32Array(6), 2)).toThrow(RangeError);
    expect(() => matmulF32(new Float32Array(6), -2, -3, new Float32Array(6), 2)).toThrow(/rows must be a non-negative integer/);
    const shared = new Float64Array(8);
    expect(() => matmulF64(shared.subarray(0, 4), 2, 2, Float64Array.from([1, 0, 0, 1]), 2, shared.subarray(2, 6))).toThrow(
      /out must not share memory with x or w/,
    );
    expect(matmulF64(shared.subarray(0, 4), 2, 2, Float64Array.from([1, 0, 0, 1]), 2, shared.subarray(4, 8)).length).toBe(4);
  });

  test.skipIf(!hasNumpy())("F64 agrees with numpy x @ w to 1e-12 relative", () => {
    const [rows, k, n] = [37, 129, 65];
    const x = randomArray(new Float64Array(rows * k), 11);
    const w = randomArray(new Float64Array(k * n), 12);
    const script = [
      "import sys, numpy as np",
      "data = sys.stdin.buffer.read()",
      `x = np.frombuffer(data, dtype='<f8', count=${rows * k}).reshape(${rows}, ${k})`,
      `w = np.frombuffer(data, dtype='<f8', offset=${rows * k * 8}).reshape(${k}, ${n})`,
      "sys.stdout.buffer.write(np.ascontiguousarray(x @ w).astype('<f8').tobytes())",
    ].join("\n");
    const input = Buffer.concat([Buffer.from(x.buffer), Buffer.from(w.buffer)]);
    const bytes = execFileSync("python3", ["-c", script], { input, maxBuffer: 1 << 24 });
    const reference = new Float64Array(new Uint8Array(bytes).buffer);
    const ours = matmulF64(x, rows, k, w, n);
    expect(reference.length).toBe(ours.length);
    let worst = 0;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n; j++) {
        // Relative to Σ|x·w|, the scale any summation order's error is bounded by.
        let scale = 0;
        for (let i = 0; i < k; i++) scale += Math.abs(x[r * k + i]! * w[i * n + j]!);
        const error = Math.abs(ours[r * n + j]! - reference[r * n + j]!) / scale;
        worst = Math.max(worst, error);
      }
    }
    expect(worst).toBeLessThan(1e-12);
  });

  test("alignmentFlops counts a multiply and an add per term", () => {
    expect(alignmentFlops(4096, 1024, 1024)).toBe(2 * 4096 * 1024 * 1024);
    expect(alignmentFlops(0, 3, 3)).toBe(0);
  });
});

describe("alignmentMetrics", () => {
  test("identity keeps all energy and has cosine 1; 2·I quadruples energy", () => {
    const x = Float64Array.from([1, 2, 3, -4, 0.5, 6]);
    const identity = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const m = alignmentMetrics(x, matmulF64(x, 2, 3, identity, 3), 2, 3, 3);
    expect(m).toMatchObject({ vectors: 2, sourceDim: 3, targetDim: 3, zeroVectors: 0, nonFiniteVectors: 0 });
    expect(m.energyRetentionMean).toBe(1);
    expect(m.energyRetentionMin).toBe(1);
    expect(m.energyRetentionMax).toBe(1);
    expect(m.energyRetentionTotal).toBe(1);
    expect(m.cosineToIdentity).toBeCloseTo(1, 15);
    const doubled = alignmentMetrics(x, matmulF64(x, 2, 3, identity.map((v) => v * 2), 3), 2, 3, 3);
    expect(doubled.energyRetentionMean).toBe(4);
    expect(doubled.cosineToIdentity).toBeCloseTo(1, 15);
    const negated = alignmentMetrics(x, matmulF64(x, 2, 3, identity.map((v) => -v), 3), 2, 3, 3);
    expect(negated.cosineToIdentity).toBeCloseTo(-1, 15);
  });

  test("matches a direct computation on random rectangular data; zero vectors are counted, not divided by", () => {
    const [rows, k, n] = [23, 17, 11];
    const x = randomArray(new Float32Array(rows * k), 21);
    x.fill(0, 5 * k, 6 * k); // row 5 is a zero vector
    const w = randomArray(new Float32Array(k * n), 22);
    const out = matmulF32(x, rows, k, w, n);
    const m = alignmentMetrics(x, out, rows, k, n);
    const ratios: number[] = [];
    let inE = 0;
    let outE = 0;
    for (let r = 0; r < rows; r++) {
      const xx = Array.from(x.subarray(r * k, (r + 1) * k)).reduce((s, v) => s + v * v, 0);
      const yy = Array.from(out.subarray(r * n, (r + 1) * n)).reduce((s, v) => s + v * v, 0);
      if (xx === 0) continue;
      ratios.push(yy / xx);
      inE += xx;
      outE += yy;
    }
    expect(m.zeroVectors).toBe(1);
    expect(m.vectors).toBe(rows);
    expect(m.energyRetentionMean!).toBeCloseTo(ratios.reduce((a, b) => a + b, 0) / ratios.length, 12);
    expect(m.energyRetentionMin).toBe(Math.min(...ratios));
    expect(m.energyRetentionMax).toBe(Math.max(...ratios));
    expect(m.energyRetentionTotal!).toBeCloseTo(outE / inE, 12);
    expect(m.cosineToIdentity).toBeNull(); // k ≠ n: no identity to compare with
  });

  test("cosine against a direct computation for square W", () => {
    const [rows, k] = [9, 12];
    const x = randomArray(new Float64Array(rows * k), 31);
    const w = randomArray(new Float64Array(k * k), 32);
    const out = matmulF64(x, rows, k, w, k);
    let sum = 0;
    for (let r = 0; r < rows; r++) {
      let xy = 0;
      let xx = 0;
      let yy = 0;
      for (let i = 0; i < k; i++) {
        const a = x[r * k + i]!;
        const b = out[r * k + i]!;
        xy += a * b;
        xx += a * a;
        yy += b * b;
      }
      sum += xy / Math.sqrt(xx * yy);
    }
    expect(alignmentMetrics(x, out, rows, k, k).cosineToIdentity!).toBeCloseTo(sum / rows, 12);
  });

  test("nothing to measure gives nulls, never invented numbers; non-finite vectors are excluded", () => {
    const zeros = alignmentMetrics(new Float64Array(6), new Float64Array(4), 2, 3, 2);
    expect(zeros).toMatchObject({
      zeroVectors: 2,
      energyRetentionMean: null,
      energyRetentionMin: null,
      energyRetentionMax: null,
      energyRetentionTotal: null,
      cosineToIdentity: null,
    });
    const overflow = alignmentMetrics(Float32Array.from([1, 1]), Float32Array.from([Infinity, 1]), 1, 2, 2);
    expect(overflow).toMatchObject({ nonFiniteVectors: 1, energyRetentionMean: null });
    const killed = alignmentMetrics(Float64Array.from([1, 2]), Float64Array.from([0, 0]), 1, 2, 2);
    expect(killed).toMatchObject({ energyRetentionMean: 0, cosineToIdentity: null, cosineSkipped: 1 });
  });

  test("inconsistent sizes throw RangeError", () => {
    expect(() => alignmentMetrics(new Float64Array(5), new Float64Array(4), 2, 3, 2)).toThrow(RangeError);
  });
});
