/**
 * Dense alignment kernels: every last-axis vector x (length k) of a tensor is
 * mapped to xW, with W a k × n row-major matrix. A tensor of shape [..., k] is
 * `rows = product(shape[:-1])` vectors stored back to back (row-major), so the
 * whole operation is one matrix product out(rows × n) = x(rows × k) · W(k × n).
 *
 * Pure code (no Node APIs): runs in Node, workers and browsers alike.
 *
 * Summation order (the reproducibility contract): every output element
 * out[r*n + j] is `s = 0; for i = 0..k-1 ascending: s = s + x[r*k+i] * w[i*n+j]`.
 *  - matmulF64 does this in float64, so a naive triple loop gives bit-identical
 *    results (neither JavaScript nor WebAssembly fuses a*b+c into an FMA).
 *  - matmulF32 does it in float32: the product and every partial sum are
 *    rounded to float32 (`s = fround(s + fround(x * w))`), exactly as a
 *    float32 CPU loop without FMA would, so it is bit-reproducible too.
 *
 * Two implementations honour that contract bit for bit: a WebAssembly SIMD
 * loop (kernel-wasm.ts, used whenever the runtime supports it) and blocked
 * plain JS (kernel-js.ts, the fallback). `alignmentKernelBackend()` says which
 * one runs here.
 */
import { matmulF32Js, matmulF64Js } from "./kernel-js.js";
import { matmulWasm, wasmSimdAvailable } from "./kernel-wasm.js";

/** What xW did to the vectors, computed in float64 from the actual data. */
export interface AlignmentMetrics {
  /** Number of vectors (rows) mapped. */
  vectors: number;
  sourceDim: number;
  targetDim: number;
  /** Vectors with ‖x‖ = 0: no retention ratio exists for them; excluded from the figures below. */
  zeroVectors: number;
  /**
   * Vectors whose input or output holds NaN/±Infinity (e.g. float32 overflow),
   * or whose squared norm overflows float64; excluded too.
   */
  nonFiniteVectors: number;
  /** Mean / min / max over the counted vectors of ‖xW‖² / ‖x‖²; null when no vector counts. */
  energyRetentionMean: number | null;
  energyRetentionMin: number | null;
  energyRetentionMax: number | null;
  /** Σ‖xW‖² / Σ‖x‖² over the counted vectors (energy-weighted retention); null when none count. */
  energyRetentionTotal: number | null;
  /**
   * Only when k === n (otherwise null): mean cosine similarity between x and
   * xW, i.e. how close W is to a rotation-free identity map. Vectors with
   * ‖xW‖ = 0 have no direction and are left out of this mean (counted in
   * `cosineSkipped`); null when no vector has a defined cosine.
   */
  cosineToIdentity: number | null;
  cosineSkipped: number;
}

/** Which implementation matmulF32/matmulF64 use in this runtime. */
export function alignmentKernelBackend(): "wasm-simd" | "js" {
  return wasmSimdAvailable() ? "wasm-simd" : "js";
}

/** Floating-point operations of one alignment (a multiply and an add per term). */
export function alignmentFlops(rows: number, k: number, n: number): number {
  return 2 * rows * k * n;
}

function checkDims(
  fn: string,
  x: Float64Array | Float32Array,
  rows: number,
  k: number,
  w: Float64Array | Float32Array,
  n: number,
  out: Float64Array | Float32Array | undefined,
): void {
  for (const [name, value] of [
    ["rows", rows],
    ["k", k],
    ["n", n],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`${fn}: ${name} must be a non-negative integer, got ${value}`);
    }
  }
  if (x.length !== rows * k) {
    throw new RangeError(`${fn}: x has ${x.length} elements, expected rows × k = ${rows} × ${k} = ${rows * k}`);
  }
  if (w.length !== k * n) {
    throw new RangeError(`${fn}: w has ${w.length} elements, expected k × n = ${k} × ${n} = ${k * n}`);
  }
  if (out !== undefined && out.length !== rows * n) {
    throw new RangeError(`${fn}: out has ${out.length} elements, expected rows × n = ${rows} × ${n} = ${rows * n}`);
  }
  if (out !== undefined && (overlaps(out, x) || overlaps(out, w))) {
    throw new RangeError(`${fn}: out must not share memory with x or w`);
  }
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * out[r*n + j] = Σ_{i ascending} x[r*k + i] * w[i*n + j] in float64.
 * Bit-identical to a naive triple loop. `out` (length rows × n, not sharing
 * memory with x or w) is overwritten when given, allocated otherwise. Throws
 * RangeError on inconsistent sizes.
 */
export function matmulF64(
  x: Float64Array,
  rows: number,
  k: number,
  w: Float64Array,
  n: number,
  out?: Float64Array,
): Float64Array {
  checkDims("matmulF64", x, rows, k, w, n, out);
  const result = out ?? new Float64Array(rows * n);
  if (rows === 0 || n === 0) return result;
  if (k === 0) return result.fill(0);
  return matmulWasm(x, rows, k, w, n, result) ? result : matmulF64Js(x, rows, k, w, n, result);
}

/**
 * out[r*n + j] = Σ_{i ascending} x[r*k + i] * w[i*n + j] in float32 arithmetic:
 * `s = fround(s + fround(x * w))` per term, starting from s = 0. `out`
 * (length rows × n, not sharing memory with x or w) is overwritten when given,
 * allocated otherwise. Throws RangeError on inconsistent sizes.
 */
export function matmulF32(
  x: Float32Array,
  rows: number,
  k: number,
  w: Float32Array,
  n: number,
  out?: Float32Array,
): Float32Array {
  checkDims("matmulF32", x, rows, k, w, n, out);
  const result = out ?? new Float32Array(rows * n);
  if (rows === 0 || n === 0) return result;
  if (k === 0) return result.fill(0);
  return matmulWasm(x, rows, k, w, n, result) ? result : matmulF32Js(x, rows, k, w, n, result);
}

/**
 * Quality figures for out = x · W (x: rows × k, out: rows × n), computed in
 * float64 from the data: per-vector energy retention ‖xW‖² / ‖x‖² and, for
 * square W, cosine similarity between x and xW.
 */
export function alignmentMetrics(
  x: ArrayLike<number>,
  out: ArrayLike<number>,
  rows: number,
  k: number,
  n: number,
): AlignmentMetrics {
  if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(k) || k < 0 || !Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`alignmentMetrics: rows, k and n must be non-negative integers, got ${rows}, ${k}, ${n}`);
  }
  if (x.length !== rows * k || out.length !== rows * n) {
    throw new RangeError(
      `alignmentMetrics: expected x of ${rows * k} and out of ${rows * n} elements, got ${x.length} and ${out.length}`,
    );
  }
  const square = k === n;
  let zeroVectors = 0;
  let nonFiniteVectors = 0;
  let counted = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  let inEnergy = 0;
  let outEnergy = 0;
  let cosineSum = 0;
  let cosineCount = 0;
  let cosineSkipped = 0;
  for (let r = 0; r < rows; r++) {
    const xo = r * k;
    const oo = r * n;
    let xx = 0;
    for (let i = 0; i < k; i++) {
      const v = x[xo + i]!;
      xx += v * v;
    }
    let yy = 0;
    for (let j = 0; j < n; j++) {
      const v = out[oo + j]!;
      yy += v * v;
    }
    if (!Number.isFinite(xx) || !Number.isFinite(yy)) {
      nonFiniteVectors++;
      continue;
    }
    if (xx === 0) {
      zeroVectors++;
      continue;
    }
    const retention = yy / xx;
    counted++;
    sum += retention;
    if (retention < min) min = retention;
    if (retention > max) max = retention;
    inEnergy += xx;
    outEnergy += yy;
    if (square) {
      if (yy === 0) {
        cosineSkipped++;
      } else {
        let xy = 0;
        for (let i = 0; i < k; i++) xy += x[xo + i]! * out[oo + i]!;
        cosineSum += xy / (Math.sqrt(xx) * Math.sqrt(yy));
        cosineCount++;
      }
    }
  }
  return {
    vectors: rows,
    sourceDim: k,
    targetDim: n,
    zeroVectors,
    nonFiniteVectors,
    energyRetentionMean: counted > 0 ? sum / counted : null,
    energyRetentionMin: counted > 0 ? min : null,
    energyRetentionMax: counted > 0 ? max : null,
    energyRetentionTotal: counted > 0 ? outEnergy / inEnergy : null,
    cosineToIdentity: square && cosineCount > 0 ? cosineSum / cosineCount : null,
    cosineSkipped,
  };
}
