/**
 * An alignment matrix as a file in the payload store: a safetensors file
 * holding exactly one 2-D tensor, W of shape [source_dim, target_dim]. Files
 * this service writes name it "w" (metadata mx.format = alignment-matrix/1);
 * uploaded files may name it "w" or "matrix" and carry any metadata.
 */
import {
  decodeSafetensors,
  encodeSafetensors,
  SafetensorsError,
  type Dtype,
  type ParsedMatrix,
  type SafetensorsHeader,
} from "@memory-exchange/shared";

export const MATRIX_FORMAT = "alignment-matrix/1";
/** Payload-store kind of matrix files. */
export const MATRIX_PAYLOAD_KIND = "alignment-matrix";
export const MATRIX_TENSOR_NAMES = ["w", "matrix"] as const;

export interface MatrixFileInfo {
  /** the tensor's name in the file */
  name: string;
  dtype: Dtype;
  sourceDim: number;
  targetDim: number;
}

export type MatrixHeaderResult = { ok: true; matrix: MatrixFileInfo } | { ok: false; message: string };

/** Whether a safetensors header describes a matrix file (one 2-D tensor named w or matrix, no empty dimension). */
export function matrixFromHeader(header: Pick<SafetensorsHeader, "tensors">): MatrixHeaderResult {
  const names = Object.keys(header.tensors);
  if (names.length !== 1) {
    return { ok: false, message: `an alignment matrix file holds exactly one tensor (named "w" or "matrix"); this one holds ${names.length}` };
  }
  const name = names[0]!;
  if (!(MATRIX_TENSOR_NAMES as readonly string[]).includes(name)) {
    return { ok: false, message: `the matrix tensor must be named "w" or "matrix", got "${name}"` };
  }
  const { dtype, shape } = header.tensors[name]!;
  if (shape.length !== 2 || shape.some((d) => d === 0)) {
    return { ok: false, message: `tensor "${name}" must have shape [source_dim, target_dim] with no empty dimension, got [${shape.join(", ")}]` };
  }
  return { ok: true, matrix: { name, dtype, sourceDim: shape[0]!, targetDim: shape[1]! } };
}

/** The payload store's tensor summary of a matrix file. */
export function matrixTensors(matrix: MatrixFileInfo): Record<string, { dtype: Dtype; shape: number[] }> {
  return { [matrix.name]: { dtype: matrix.dtype, shape: [matrix.sourceDim, matrix.targetDim] } };
}

/** The canonical file for an inline matrix: deterministic bytes, so its SHA-256 addresses it. */
export function matrixToSafetensors(matrix: ParsedMatrix): Uint8Array {
  return encodeSafetensors(
    { w: { dtype: matrix.dtype, shape: [matrix.sourceDim, matrix.targetDim], data: matrix.bytes } },
    { "mx.format": MATRIX_FORMAT },
  );
}

/** W's info and little-endian bytes (a view into `bytes`) from a whole matrix file. */
export function matrixFromSafetensors(bytes: Uint8Array): MatrixFileInfo & { data: Uint8Array } {
  const file = decodeSafetensors(bytes);
  const described = matrixFromHeader(file.header);
  if (!described.ok) throw new SafetensorsError(described.message);
  return { ...described.matrix, data: file.tensors[described.matrix.name]!.data };
}
