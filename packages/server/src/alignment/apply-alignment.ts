/**
 * xW applied to one KV-cache tensor: every last-axis vector x (length
 * source_dim) becomes xW (length target_dim), run on the worker pool.
 *
 * Precision follows the tensor's encoding (the reproducibility contract of
 * the shared kernel): nested arrays and float64 encodings are computed in
 * float64; float32, float16 and bfloat16 encodings are decoded to float32,
 * computed in float32 and rounded back to their own dtype once.
 */
import {
  alignmentFlops,
  allFinite,
  decodeToFloat32,
  decodeToFloat64,
  encodeFromFloat32,
  float64ArrayBytes,
  type AlignmentMetrics,
  type AlignmentTensorMetrics,
  type ParsedTensor,
} from "@memory-exchange/shared";
import type { Weights } from "./matrix-weights.js";
import type { AlignmentDtype, AlignmentPool } from "./worker-pool.js";

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The precision xW is computed in for this tensor. */
export function computeDtype(tensor: Pick<ParsedTensor, "form" | "dtype">): AlignmentDtype {
  return tensor.form === "nested" || tensor.dtype === "float64" ? "float64" : "float32";
}

/** The tensor as `rows` vectors of its last dimension. */
export function tensorRows(tensor: { shape: readonly number[] }): { rows: number; k: number } {
  const k = tensor.shape[tensor.shape.length - 1]!;
  let rows = 1;
  for (let i = 0; i < tensor.shape.length - 1; i++) rows *= tensor.shape[i]!;
  return { rows, k };
}

/** FLOPs of aligning keys and values to target_dim n. */
export function kvCacheAlignmentFlops(payload: { keys: { shape: readonly number[] }; values: { shape: readonly number[] } }, n: number): number {
  let flops = 0;
  for (const tensor of [payload.keys, payload.values]) {
    const { rows, k } = tensorRows(tensor);
    flops += alignmentFlops(rows, k, n);
  }
  return flops;
}

export interface TensorAlignment {
  tensor: ParsedTensor;
  metrics: AlignmentTensorMetrics;
  /** elements of the delivered (re-encoded) result that are NaN or ±Infinity: the product overflowed the dtype */
  nonFiniteElements: boolean;
}

/** The figures the report carries (the kernel's own sourceDim/targetDim are the report's). */
function tensorMetrics(m: AlignmentMetrics): AlignmentTensorMetrics {
  return {
    vectors: m.vectors,
    zeroVectors: m.zeroVectors,
    nonFiniteVectors: m.nonFiniteVectors,
    energyRetentionMean: m.energyRetentionMean,
    energyRetentionMin: m.energyRetentionMin,
    energyRetentionMax: m.energyRetentionMax,
    energyRetentionTotal: m.energyRetentionTotal,
    cosineToIdentity: m.cosineToIdentity,
    cosineSkipped: m.cosineSkipped,
  };
}

/**
 * Aligns one tensor on the pool. `w` must be in the tensor's compute dtype
 * (computeDtype). The decoded input is transferred to the worker; W, in
 * shared memory, is not copied.
 */
export async function alignTensor(pool: AlignmentPool, tensor: ParsedTensor, w: Weights, n: number): Promise<TensorAlignment> {
  const dtype = computeDtype(tensor);
  const { rows, k } = tensorRows(tensor);
  const x = dtype === "float64" ? decodeToFloat64(tensor.dtype, tensor.bytes) : decodeToFloat32(tensor.dtype, tensor.bytes);
  const { out, metrics } = await pool.run({ dtype, x, rows, k, w, n });
  // float64 compute only happens for float64 tensors (nested ones included): the result is stored as is, and so is a float32 one.
  const bytes =
    out instanceof Float64Array
      ? float64ArrayBytes(out)
      : tensor.dtype === "float32" && HOST_LITTLE_ENDIAN
        ? new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
        : encodeFromFloat32(tensor.dtype, out);
  // In the compute dtype the kernel's metrics already count non-finite outputs; narrowing to float16/bfloat16 can overflow on its own.
  const narrowed = tensor.dtype === "float16" || tensor.dtype === "bfloat16";
  const nonFiniteElements = (narrowed || metrics.nonFiniteVectors > 0) && !allFinite(tensor.dtype, bytes).ok;
  return {
    tensor: { form: tensor.form, dtype: tensor.dtype, shape: [...tensor.shape.slice(0, -1), n], bytes },
    metrics: tensorMetrics(metrics),
    nonFiniteElements,
  };
}
