import { decodeToFloat32, decodeToFloat64 } from "@memory-exchange/shared";
import type { PayloadStore } from "../store/payload-store.js";
import type { MatrixRow } from "./alignment-store.js";
import { matrixFromSafetensors } from "./matrix-file.js";
import type { AlignmentDtype } from "./worker-pool.js";

/** W decoded for the kernel, in one of the two compute precisions. */
export type Weights = Float64Array | Float32Array;

export interface MatrixWeights {
  /** W of a registered matrix as float64 or float32 values (row-major source_dim × target_dim). */
  get(matrix: MatrixRow, dtype: AlignmentDtype): Promise<Weights>;
}

/** Default budget of decoded matrices kept in memory. */
export const DEFAULT_WEIGHTS_BUDGET_BYTES = 256 * 1024 * 1024;

/**
 * Decoded matrices, kept (least recently used first out) within a byte
 * budget. A matrix never changes under its id, so an entry is never stale.
 * Values sit in SharedArrayBuffers: the worker pool hands them to a worker
 * without copying, and jobs never write to W.
 */
export function createMatrixWeights(payloads: PayloadStore, budgetBytes = DEFAULT_WEIGHTS_BUDGET_BYTES): MatrixWeights {
  const entries = new Map<string, Promise<Weights>>();
  const sizes = new Map<string, number>();
  let total = 0;

  async function load(matrix: MatrixRow, dtype: AlignmentDtype): Promise<Weights> {
    const bytes = await payloads.read(matrix.digest);
    if (!bytes) throw new Error(`alignment matrix ${matrix.id}: payload ${matrix.digest} is not stored`);
    const file = matrixFromSafetensors(bytes);
    if (file.sourceDim !== matrix.sourceDim || file.targetDim !== matrix.targetDim) {
      throw new Error(`alignment matrix ${matrix.id}: stored file is [${file.sourceDim}, ${file.targetDim}], registered as [${matrix.sourceDim}, ${matrix.targetDim}]`);
    }
    const decoded = dtype === "float64" ? decodeToFloat64(file.dtype, file.data) : decodeToFloat32(file.dtype, file.data);
    const shared = dtype === "float64" ? new Float64Array(new SharedArrayBuffer(decoded.byteLength)) : new Float32Array(new SharedArrayBuffer(decoded.byteLength));
    shared.set(decoded);
    return shared;
  }

  function evict(keep: string): void {
    for (const key of entries.keys()) {
      if (total <= budgetBytes) return;
      if (key === keep) continue;
      total -= sizes.get(key) ?? 0;
      entries.delete(key);
      sizes.delete(key);
    }
  }

  return {
    get(matrix, dtype) {
      const key = `${matrix.id}:${dtype}`;
      const hit = entries.get(key);
      if (hit) {
        // Map order is insertion order: re-inserting marks it most recently used.
        entries.delete(key);
        entries.set(key, hit);
        return hit;
      }
      const size = matrix.sourceDim * matrix.targetDim * (dtype === "float64" ? 8 : 4);
      const pending = load(matrix, dtype);
      if (size > budgetBytes) return pending;
      entries.set(key, pending);
      sizes.set(key, size);
      total += size;
      pending.catch(() => {
        // A failed load is not remembered.
        if (entries.get(key) === pending) {
          entries.delete(key);
          total -= sizes.get(key) ?? 0;
          sizes.delete(key);
        }
      });
      evict(key);
      return pending;
    },
  };
}
