import { createHash } from "node:crypto";
import {
  analyzeKvCache,
  kvCacheToDocument,
  kvCacheToSafetensors,
  MAX_MATRIX_ELEMENTS,
  safetensorsToKvCache,
  type AlignmentReport,
  type KvCacheDocument,
  type listMatricesInput,
  type listMatricesOutput,
  type ParsedKvCache,
  type publishMatrixInput,
  type publishMatrixOutput,
  type setMatrixStatusInput,
  type setMatrixStatusOutput,
} from "@memory-exchange/shared";
import type { z } from "zod";
import type { AlignmentRuntime, AlignOutcome } from "../alignment/alignment-runtime.js";
import type { MatrixRow } from "../alignment/alignment-store.js";
import {
  alignedTensorBytes,
  alignTensor,
  computeDtype,
  kvCacheAlignmentFlops,
  tensorRows,
  type TensorAlignment,
} from "../alignment/apply-alignment.js";
import { MATRIX_PAYLOAD_KIND, matrixFromHeader, matrixToSafetensors } from "../alignment/matrix-file.js";
import { AlignmentPoolError } from "../alignment/worker-pool.js";
import { DomainError, notFound } from "../errors.js";
import { readStoredHeader } from "../payloads/stored-header.js";
import type { Store } from "../store/store.js";
import type { Principal } from "./api-keys.js";

type Out<T extends z.ZodType> = z.output<T>;

const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/**
 * Owner recorded for aligned payloads the service derives: no user (ids are
 * positive), so nobody can publish them by digest as if they had uploaded them.
 */
const SERVICE_OWNER_ID = 0;

// ---- the registry ----

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

// ---- applying a matrix on purchase / use ----

type TensorPairMetrics = Extract<AlignOutcome, { ok: true }>["metrics"];

export interface AlignedDelivery {
  document: KvCacheDocument;
  alignment: AlignmentReport;
}

function describeIssue(issues: { path: (string | number)[]; message: string }[]): string {
  const first = issues[0];
  return first ? first.message : "invalid";
}

/** Pool failures a client can act on become retryable overload answers; anything else stays internal. */
function poolFailure(error: unknown): never {
  if (error instanceof AlignmentPoolError) {
    if (error.code === "BUSY") throw new DomainError("OVERLOADED", "Every alignment worker is busy; retry shortly", undefined, 1);
    if (error.code === "CLOSED") throw new DomainError("OVERLOADED", "The service is shutting down; retry", undefined, 1);
  }
  throw error;
}

async function computeAlignment(
  store: Store,
  runtime: AlignmentRuntime,
  parsed: ParsedKvCache,
  matrix: MatrixRow,
  sourceDigest: string,
  targetModel: string,
): Promise<AlignOutcome> {
  const n = matrix.targetDim;
  const align = async (field: "keys" | "values"): Promise<TensorAlignment> => {
    const tensor = parsed[field];
    const w = await runtime.weights.get(matrix, computeDtype(tensor));
    return alignTensor(runtime.pool, tensor, w, n).catch(poolFailure);
  };
  const [keys, values] = await Promise.all([align("keys"), align("values")]);
  runtime.counters.computed++;
  const flops = kvCacheAlignmentFlops(parsed, n);
  const metrics = { keys: keys.metrics, values: values.metrics };
  const overflowed = (["keys", "values"] as const).filter((field) => (field === "keys" ? keys : values).nonFiniteElements);
  if (overflowed.length > 0) {
    const reason =
      `xW with alignment matrix ${matrix.id} leaves the finite range of the payload's dtype in ${overflowed.join(" and ")} ` +
      "(the product overflows); delivered as published";
    await runtime.matrices.recordAlignedPayload({ sourceDigest, matrixId: matrix.id, alignedDigest: null, metrics: JSON.stringify({ flops, metrics }), refusal: reason });
    return { ok: false, reason };
  }

  const aligned: ParsedKvCache = { ...parsed, sourceModel: targetModel, keys: keys.tensor, values: values.tensor };
  const bytes = kvCacheToSafetensors(aligned);
  const alignedDigest = sha256Hex(bytes);
  const tensors = JSON.stringify({
    keys: { dtype: aligned.keys.dtype, shape: aligned.keys.shape },
    values: { dtype: aligned.values.dtype, shape: aligned.values.shape },
  });
  // The payload first, then the row pointing at it: a row never names a payload that is not there.
  await store.payloads.put({ digest: alignedDigest, kind: "kv-cache", tensors, bytes, ownerId: SERVICE_OWNER_ID });
  await runtime.matrices.recordAlignedPayload({ sourceDigest, matrixId: matrix.id, alignedDigest, metrics: JSON.stringify({ flops, metrics }), refusal: null });
  return { ok: true, document: kvCacheToDocument(aligned) as KvCacheDocument, flops, metrics };
}

/** A result computed before, or null when the cache holds none (or its payload went missing). */
async function cachedAlignment(store: Store, runtime: AlignmentRuntime, sourceDigest: string, matrixId: number): Promise<AlignOutcome | null> {
  const row = await runtime.matrices.findAlignedPayload(sourceDigest, matrixId);
  if (!row) return null;
  if (row.refusal !== null) return { ok: false, reason: row.refusal };
  const bytes = row.alignedDigest ? await store.payloads.read(row.alignedDigest) : null;
  if (!bytes) return null;
  const { flops, metrics } = JSON.parse(row.metrics) as { flops: number; metrics: TensorPairMetrics };
  return { ok: true, document: safetensorsToKvCache(bytes) as KvCacheDocument, flops, metrics };
}

/**
 * The payload a purchase or use delivers for `targetModel`. With a different
 * target and an active matrix for the pair whose source_dim is the payload's
 * last dimension, keys and values are mapped to xW, in the payload's own
 * encoding, and the document names the target as its sourceModel; otherwise
 * the payload is delivered as published and the report says why. Nothing is
 * ever padded or truncated.
 *
 * Deterministic and cached: the result is stored under (payload digest,
 * matrix id) and a repeat reads it back. Work above the configured bound, or
 * an aligned payload above the inline limit, throws ALIGNMENT_TOO_LARGE:
 * callers align before they record a trade, so such a request records nothing.
 *
 * `payloadDigest` is the stored payload's digest; the older code's inline JSON
 * has none and is keyed by the SHA-256 of its canonical form.
 */
export async function alignForTarget(
  store: Store,
  runtime: AlignmentRuntime,
  published: KvCacheDocument,
  payloadDigest: string | null,
  targetModel: string,
  inlineLimitBytes: number,
): Promise<AlignedDelivery> {
  const sourceModel = typeof published.sourceModel === "string" ? published.sourceModel : null;
  const asPublished = (reason: string, matrixId?: number): AlignedDelivery => ({
    document: published,
    alignment: { applied: false, reason, sourceModel, targetModel, ...(matrixId === undefined ? {} : { matrixId }) },
  });
  if (sourceModel === targetModel) return asPublished("same model");
  if (sourceModel === null) return asPublished("the payload names no sourceModel; delivered as published");

  const matrix = await runtime.matrices.newestActiveMatrix(sourceModel, targetModel);
  if (!matrix) return asPublished(`no active alignment matrix is registered for ${sourceModel} -> ${targetModel}; delivered as published`);

  const analysis = analyzeKvCache(published, { maxElements: Number.MAX_SAFE_INTEGER });
  if (!analysis.ok) {
    return asPublished(`the stored payload is not a valid KV cache (${describeIssue(analysis.issues)}); delivered as published`, matrix.id);
  }
  const parsed = analysis.payload;
  const { k } = tensorRows(parsed.keys);
  if (k !== matrix.sourceDim) {
    return asPublished(
      `the payload's last dimension is ${k} but alignment matrix ${matrix.id} has source_dim ${matrix.sourceDim} ` +
        `(it maps ${matrix.sourceDim} -> ${matrix.targetDim}); delivered as published`,
      matrix.id,
    );
  }

  const sourceDigest = payloadDigest ?? sha256Hex(kvCacheToSafetensors(parsed));
  const key = `${sourceDigest}:${matrix.id}`;
  let cached = true;
  let outcome = await (runtime.inflight.get(key) ?? cachedAlignment(store, runtime, sourceDigest, matrix.id));
  if (!outcome) {
    const flops = kvCacheAlignmentFlops(parsed, matrix.targetDim);
    if (flops > runtime.maxFlops) {
      const message =
        `aligning this payload with matrix ${matrix.id} (${matrix.sourceDim} -> ${matrix.targetDim}) takes ${flops} FLOPs, ` +
        `over the service's bound of ${runtime.maxFlops} (MEMORY_EXCHANGE_ALIGNMENT_MAX_GFLOP)`;
      throw new DomainError("ALIGNMENT_TOO_LARGE", `targetModel: ${message}`, [{ path: "targetModel", message }]);
    }
    const bytes = alignedTensorBytes(parsed, matrix.targetDim);
    if (bytes > inlineLimitBytes) {
      const message =
        `the aligned keys and values would take ${bytes} bytes, over the inline payload limit of ${inlineLimitBytes} bytes ` +
        "(MEMORY_EXCHANGE_INLINE_PAYLOAD_MB)";
      throw new DomainError("ALIGNMENT_TOO_LARGE", `targetModel: ${message}`, [{ path: "targetModel", message }]);
    }
    // Concurrent requests for the same result share one computation.
    const running = computeAlignment(store, runtime, parsed, matrix, sourceDigest, targetModel);
    runtime.inflight.set(key, running);
    try {
      outcome = await running;
    } finally {
      runtime.inflight.delete(key);
    }
    cached = false;
  } else {
    runtime.counters.cached++;
  }

  if (!outcome.ok) return asPublished(outcome.reason, matrix.id);
  return {
    document: outcome.document,
    alignment: {
      applied: true,
      matrixId: matrix.id,
      matrixVersion: matrix.version,
      sourceModel,
      targetModel,
      sourceDim: matrix.sourceDim,
      targetDim: matrix.targetDim,
      cached,
      flops: outcome.flops,
      metrics: outcome.metrics,
    },
  };
}
