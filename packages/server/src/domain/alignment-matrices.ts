import {
  MAX_MATRIX_ELEMENTS,
  type listMatricesInput,
  type listMatricesOutput,
  type publishMatrixInput,
  type publishMatrixOutput,
  type setMatrixStatusInput,
  type setMatrixStatusOutput,
} from "@memory-exchange/shared";
import type { z } from "zod";
import type { AlignmentRuntime } from "../alignment/alignment-runtime.js";
import type { MatrixRow } from "../alignment/alignment-store.js";
import { MATRIX_PAYLOAD_KIND, matrixFromHeader, matrixToSafetensors } from "../alignment/matrix-file.js";
import { DomainError, notFound } from "../errors.js";
import { readStoredHeader } from "../payloads/stored-header.js";
import type { Store } from "../store/store.js";
import type { Principal } from "./api-keys.js";
import { sha256Hex } from "./kv-cache-payloads.js";

type Out<T extends z.ZodType> = z.output<T>;

const toMatrix = (row: MatrixRow): Out<typeof setMatrixStatusOutput> => ({ ...row });

/**
 * Registers W for (sourceModel → targetModel). The matrix is stored once in
 * the payload store (inline ones as a canonical safetensors file); a digest
 * must name a matrix file the caller uploaded. The newest active matrix of a
 * pair is the one purchases apply.
 */
export async function publishMatrix(
  store: Store,
  runtime: AlignmentRuntime,
  publisherId: number,
  input: Out<typeof publishMatrixInput>,
): Promise<Out<typeof publishMatrixOutput>> {
  let stored: { digest: string; dtype: MatrixRow["dtype"]; sourceDim: number; targetDim: number };
  if (input.matrix.kind === "inline") {
    const { matrix } = input.matrix;
    const bytes = matrixToSafetensors(matrix);
    const digest = sha256Hex(bytes);
    const tensors = JSON.stringify({ w: { dtype: matrix.dtype, shape: [matrix.sourceDim, matrix.targetDim] } });
    await store.payloads.put({ digest, kind: MATRIX_PAYLOAD_KIND, tensors, bytes, ownerId: publisherId });
    stored = { digest, dtype: matrix.dtype, sourceDim: matrix.sourceDim, targetDim: matrix.targetDim };
  } else {
    const { digest } = input.matrix;
    // Another user's digest is answered like an unknown one: a digest never reveals who holds those bytes.
    const info = (await store.payloads.isOwner(digest, publisherId)) ? await store.payloads.info(digest) : null;
    if (!info) {
      const message = `no payload ${digest} was uploaded by you; upload the matrix file with PUT /api/v1/payloads first`;
      throw new DomainError("NOT_FOUND", `matrix: ${message}`, [{ path: "matrix", message }]);
    }
    const described = matrixFromHeader(await readStoredHeader(store.payloads, info));
    if (!described.ok) {
      const message = `payload ${digest} is not an alignment matrix file: ${described.message}`;
      throw new DomainError("UNPROCESSABLE", `matrix: ${message}`, [{ path: "matrix", message }]);
    }
    const { dtype, sourceDim, targetDim } = described.matrix;
    if (sourceDim * targetDim > MAX_MATRIX_ELEMENTS) {
      const message = `W is ${sourceDim} × ${targetDim}, over the limit of ${MAX_MATRIX_ELEMENTS} elements`;
      throw new DomainError("PAYLOAD_TOO_LARGE", `matrix: ${message}`, [{ path: "matrix", message }]);
    }
    stored = { digest, dtype, sourceDim, targetDim };
  }
  const matrixId = await runtime.matrices.insertMatrix({
    sourceModel: input.sourceModel,
    targetModel: input.targetModel,
    ...stored,
    version: input.version ?? null,
    description: input.description ?? null,
    publisherId,
  });
  return { matrixId, sourceDim: stored.sourceDim, targetDim: stored.targetDim };
}

export async function listMatrices(runtime: AlignmentRuntime, input: Out<typeof listMatricesInput>): Promise<Out<typeof listMatricesOutput>> {
  const rows = await runtime.matrices.listMatrices(input);
  return { matrices: rows.map(toMatrix) };
}

/** Activates or retires a matrix: its publisher, or an admin key. */
export async function setMatrixStatus(
  runtime: AlignmentRuntime,
  principal: Principal,
  input: Out<typeof setMatrixStatusInput>,
): Promise<Out<typeof setMatrixStatusOutput>> {
  const matrix = await runtime.matrices.findMatrix(input.matrixId);
  if (!matrix) throw notFound(`alignment matrix ${input.matrixId}`);
  if (matrix.publisherId !== principal.userId && !principal.scopes.includes("admin")) {
    throw new DomainError("FORBIDDEN", `Only the publisher of alignment matrix ${matrix.id} (or an admin key) may change its status`);
  }
  if (matrix.status !== input.status) await runtime.matrices.setMatrixStatus(matrix.id, input.status);
  return toMatrix({ ...matrix, status: input.status });
}
