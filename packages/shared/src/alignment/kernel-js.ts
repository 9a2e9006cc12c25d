/**
 * Plain-JavaScript alignment kernels: the fallback where WebAssembly SIMD is
 * unavailable, and the reference the WebAssembly path is tested against.
 * Same summation contract as kernel.ts (ascending i per output; float32
 * rounding of every product and partial sum in the float32 variant).
 *
 * Plain JS has no SIMD, so these are scalar. They pack a k-block of W into
 * column panels of NR = 4 (and a row block of x into MR = 4 interleaved rows),
 * both widened to float64 so the hot loop does no float32→float64 conversion
 * on load, then run a 4 × 4 register-blocked micro-kernel over the block.
 * Blocking over k keeps the ascending-i order per output because k-blocks are
 * accumulated into `out` in ascending order. Callers validate sizes.
 */

/** Rows of x per register tile. */
const MR = 4;
/** Columns of W per register tile (one packed panel). */
const NR = 4;
/** k-block length: one packed block of W (KC × n float64) is reused by every row block. */
const KC = 256;

/**
 * Packs rows [k0, k0 + kc) of W into column panels: panel p holds columns
 * p*NR .. p*NR+NR-1 as kc consecutive groups of NR values, widened to float64
 * and zero-padded past column n (padded columns are computed but never stored).
 */
function packW(w: ArrayLike<number>, n: number, k0: number, kc: number, panels: number, packed: Float64Array): void {
  for (let p = 0; p < panels; p++) {
    const j0 = p * NR;
    const width = Math.min(NR, n - j0);
    let d = p * kc * NR;
    for (let i = k0; i < k0 + kc; i++) {
      const s = i * n + j0;
      if (width === NR) {
        packed[d] = w[s]!;
        packed[d + 1] = w[s + 1]!;
        packed[d + 2] = w[s + 2]!;
        packed[d + 3] = w[s + 3]!;
      } else {
        for (let c = 0; c < NR; c++) packed[d + c] = c < width ? w[s + c]! : 0;
      }
      d += NR;
    }
  }
}

/**
 * Packs MR rows of x (from r0, columns [k0, k0 + kc)) interleaved: element
 * (i, a) at (i - k0) * MR + a. Past the last row the last row is repeated;
 * those results are computed but never stored.
 */
function packX(x: ArrayLike<number>, rows: number, k: number, r0: number, k0: number, kc: number, packed: Float64Array): void {
  for (let a = 0; a < MR; a++) {
    const s = Math.min(r0 + a, rows - 1) * k + k0;
    let d = a;
    for (let i = 0; i < kc; i++) {
      packed[d] = x[s + i]!;
      d += MR;
    }
  }
}

/**
 * 4 × 4 float64 micro-kernel: C[co + a*ldc + c] += Σ_i A[i*4 + a] * B[pb + i*4 + c]
 * for i ascending. `| 0` on the indices spares V8 its int32 overflow checks.
 */
function microKernelF64(
  A: Float64Array,
  B: Float64Array,
  pb: number,
  kc: number,
  C: Float64Array,
  co: number,
  ldc: number,
): void {
  const o0 = co | 0;
  const o1 = (o0 + ldc) | 0;
  const o2 = (o1 + ldc) | 0;
  const o3 = (o2 + ldc) | 0;
  let c00 = C[o0]!, c01 = C[o0 + 1]!, c02 = C[o0 + 2]!, c03 = C[o0 + 3]!;
  let c10 = C[o1]!, c11 = C[o1 + 1]!, c12 = C[o1 + 2]!, c13 = C[o1 + 3]!;
  let c20 = C[o2]!, c21 = C[o2 + 1]!, c22 = C[o2 + 2]!, c23 = C[o2 + 3]!;
  let c30 = C[o3]!, c31 = C[o3 + 1]!, c32 = C[o3 + 2]!, c33 = C[o3 + 3]!;
  const end = (kc * MR) | 0;
  let pa = 0;
  let p = pb | 0;
  while (pa < end) {
    const a0 = A[pa]!, a1 = A[pa + 1]!, a2 = A[pa + 2]!, a3 = A[pa + 3]!;
    const b0 = B[p]!, b1 = B[p + 1]!, b2 = B[p + 2]!, b3 = B[p + 3]!;
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
    pa = (pa + MR) | 0;
    p = (p + NR) | 0;
  }
  C[o0] = c00; C[o0 + 1] = c01; C[o0 + 2] = c02; C[o0 + 3] = c03;
  C[o1] = c10; C[o1 + 1] = c11; C[o1 + 2] = c12; C[o1 + 3] = c13;
  C[o2] = c20; C[o2 + 1] = c21; C[o2 + 2] = c22; C[o2 + 3] = c23;
  C[o3] = c30; C[o3 + 1] = c31; C[o3 + 2] = c32; C[o3 + 3] = c33;
}

const fround = Math.fround;

/**
 * 4 × 4 float32 micro-kernel: as microKernelF64, but the product and each
 * partial sum are rounded to float32. A and B hold float32 values widened to
 * float64 (exact), so a * b is exact and fround(a * b) is the float32 product.
 */
function microKernelF32(
  A: Float64Array,
  B: Float64Array,
  pb: number,
  kc: number,
  C: Float32Array,
  co: number,
  ldc: number,
): void {
  const o0 = co | 0;
  const o1 = (o0 + ldc) | 0;
  const o2 = (o1 + ldc) | 0;
  const o3 = (o2 + ldc) | 0;
  let c00 = C[o0]!, c01 = C[o0 + 1]!, c02 = C[o0 + 2]!, c03 = C[o0 + 3]!;
  let c10 = C[o1]!, c11 = C[o1 + 1]!, c12 = C[o1 + 2]!, c13 = C[o1 + 3]!;
  let c20 = C[o2]!, c21 = C[o2 + 1]!, c22 = C[o2 + 2]!, c23 = C[o2 + 3]!;
  let c30 = C[o3]!, c31 = C[o3 + 1]!, c32 = C[o3 + 2]!, c33 = C[o3 + 3]!;
  const end = (kc * MR) | 0;
  let pa = 0;
  let p = pb | 0;
  while (pa < end) {
    const a0 = A[pa]!, a1 = A[pa + 1]!, a2 = A[pa + 2]!, a3 = A[pa + 3]!;
    const b0 = B[p]!, b1 = B[p + 1]!, b2 = B[p + 2]!, b3 = B[p + 3]!;
    c00 = fround(c00 + fround(a0 * b0)); c01 = fround(c01 + fround(a0 * b1));
    c02 = fround(c02 + fround(a0 * b2)); c03 = fround(c03 + fround(a0 * b3));
    c10 = fround(c10 + fround(a1 * b0)); c11 = fround(c11 + fround(a1 * b1));
    c12 = fround(c12 + fround(a1 * b2)); c13 = fround(c13 + fround(a1 * b3));
    c20 = fround(c20 + fround(a2 * b0)); c21 = fround(c21 + fround(a2 * b1));
    c22 = fround(c22 + fround(a2 * b2)); c23 = fround(c23 + fround(a2 * b3));
    c30 = fround(c30 + fround(a3 * b0)); c31 = fround(c31 + fround(a3 * b1));
    c32 = fround(c32 + fround(a3 * b2)); c33 = fround(c33 + fround(a3 * b3));
    pa = (pa + MR) | 0;
    p = (p + NR) | 0;
  }
  C[o0] = c00; C[o0 + 1] = c01; C[o0 + 2] = c02; C[o0 + 3] = c03;
  C[o1] = c10; C[o1 + 1] = c11; C[o1 + 2] = c12; C[o1 + 3] = c13;
  C[o2] = c20; C[o2 + 1] = c21; C[o2 + 2] = c22; C[o2 + 3] = c23;
  C[o3] = c30; C[o3 + 1] = c31; C[o3 + 2] = c32; C[o3 + 3] = c33;
}

type Micro<C> = (A: Float64Array, B: Float64Array, pb: number, kc: number, C: C, co: number, ldc: number) => void;

/** The blocked driver shared by both precisions; `out` is zero-filled first. */
function blockedMatmul<C extends Float64Array | Float32Array>(
  x: ArrayLike<number>,
  rows: number,
  k: number,
  w: ArrayLike<number>,
  n: number,
  out: C,
  tile: C,
  micro: Micro<C>,
): C {
  out.fill(0);
  if (rows === 0 || n === 0 || k === 0) return out;
  const panels = Math.ceil(n / NR);
  const kcMax = Math.min(KC, k);
  const packedW = new Float64Array(kcMax * panels * NR);
  const packedX = new Float64Array(kcMax * MR);
  for (let k0 = 0; k0 < k; k0 += KC) {
    const kc = Math.min(KC, k - k0);
    packW(w, n, k0, kc, panels, packedW);
    for (let r0 = 0; r0 < rows; r0 += MR) {
      packX(x, rows, k, r0, k0, kc, packedX);
      const mr = Math.min(MR, rows - r0);
      for (let p = 0; p < panels; p++) {
        const j0 = p * NR;
        const pb = p * kc * NR;
        const nr = Math.min(NR, n - j0);
        if (mr === MR && nr === NR) {
          micro(packedX, packedW, pb, kc, out, r0 * n + j0, n);
        } else {
          // Edge tile: run the same micro-kernel on a scratch tile, copy back the valid part.
          tile.fill(0);
          for (let a = 0; a < mr; a++) for (let c = 0; c < nr; c++) tile[a * NR + c] = out[(r0 + a) * n + j0 + c]!;
          micro(packedX, packedW, pb, kc, tile, 0, NR);
          for (let a = 0; a < mr; a++) for (let c = 0; c < nr; c++) out[(r0 + a) * n + j0 + c] = tile[a * NR + c]!;
        }
      }
    }
  }
  return out;
}

/** out = x · W in float64 (bit-identical to a naive ascending-i loop). Sizes are not checked. */
export function matmulF64Js(x: Float64Array, rows: number, k: number, w: Float64Array, n: number, out: Float64Array): Float64Array {
  return blockedMatmul(x, rows, k, w, n, out, new Float64Array(MR * NR), microKernelF64);
}

/** out = x · W in float32 arithmetic (fround after every product and sum). Sizes are not checked. */
export function matmulF32Js(x: Float32Array, rows: number, k: number, w: Float32Array, n: number, out: Float32Array): Float32Array {
  return blockedMatmul(x, rows, k, w, n, out, new Float32Array(MR * NR), microKernelF32);
}
