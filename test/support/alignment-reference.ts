import { decodeBase64, decodeToFloat32, encodeBase64, encodeFromFloat32, type Dtype } from "@memory-exchange/shared";

/**
 * Test references for xW, written as plainly as possible (no blocking, no
 * SIMD) so the service's kernel is checked against an independent loop.
 */

/** Deterministic values in [-scale, scale) (xorshift32). */
export function pseudoRandom(count: number, seed: number, scale = 1): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out.push(((s / 2 ** 32) * 2 - 1) * scale);
  }
  return out;
}

/** out[r][j] = Σ_i x[r][i] · w[i][j], i ascending, each product and partial sum rounded to float32 (no FMA). */
export function float32Reference(x: Float32Array, rows: number, k: number, w: Float32Array, n: number): Float32Array {
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

/** The same in float64 (JavaScript numbers). */
export function float64Reference(x: ArrayLike<number>, rows: number, k: number, w: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < k; i++) s = s + x[r * k + i]! * w[i * n + j]!;
      out[r * n + j] = s;
    }
  }
  return out;
}

export interface Encoded {
  dtype: Dtype;
  shape: number[];
  data: string;
}

/** The compact encoding of float32-representable values in `dtype` (rounded once, to nearest even). */
export function encodeTensor(dtype: Dtype, shape: number[], values: ArrayLike<number>): Encoded {
  const bytes =
    dtype === "float64" ? new Uint8Array(new Float64Array(Array.from(values)).buffer) : encodeFromFloat32(dtype, new Float32Array(Array.from(values)));
  return { dtype, shape, data: encodeBase64(bytes) };
}

/** What the service must deliver for an encoded float16/bfloat16/float32 tensor: decode, float32 xW, encode back. */
export function expectedEncoded(x: Encoded, w: Float32Array, n: number): Encoded {
  const k = x.shape[x.shape.length - 1]!;
  const values = decodeToFloat32(x.dtype, decodeBase64(x.data));
  const rows = values.length / k;
  const out = float32Reference(values, rows, k, w, n);
  return { dtype: x.dtype, shape: [...x.shape.slice(0, -1), n], data: encodeBase64(encodeFromFloat32(x.dtype, out)) };
}
