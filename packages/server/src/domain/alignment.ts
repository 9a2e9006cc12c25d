import { webcrypto } from "node:crypto";
import {
  analyzeKvCache,
  kvCacheToDocument,
  kvCacheToSafetensors,
  payloadDigestSchema,
  safetensorsToKvCache,
  safetensorsToParsedKvCache,
  type AlignmentReport,
  type KvCacheDocument,
  type ParsedKvCache,
} from "@memory-exchange/shared";
import type { AlignmentRuntime, AlignOutcome } from "../alignment/alignment-runtime.js";
import type { MatrixRow } from "../alignment/alignment-store.js";
import { alignTensor, computeDtype, kvCacheAlignmentFlops, tensorRows, type TensorAlignment } from "../alignment/apply-alignment.js";
import { putPayloadYielding, readPayloadYielding } from "../alignment/payload-io.js";
import { AlignmentPoolError } from "../alignment/worker-pool.js";
import { DomainError, invalidInput, notFound } from "../errors.js";
import { recordPayloadBytes } from "../http/metrics.js";
import type { Store } from "../store/store.js";
import { inlineKvCache, notInlinedAlignment, sha256Hex, type PayloadLocation } from "./kv-cache-payloads.js";

/**
 * What a purchase or use delivers for the requested target model.
 *
 * With a target other than the payload's model and an active matrix W for
 * the pair whose source_dim is the payload's last dimension, every last-axis
 * vector x of keys and values becomes xW, in the payload's own encoding
 * (nested: float64; float32/float16/bfloat16: float32 arithmetic, stored back
 * in their dtype; float64: float64), and the document names the target as
 * its sourceModel. Otherwise the payload is delivered as published and the
 * report says why. Nothing is ever padded or truncated.
 *
 * The product runs on the worker pool. Its result is stored in the payload
 * store and recorded under (payload digest, matrix id), so a repeat purchase
 * or use reads it back and never recomputes. Work above the FLOP bound, or a
 * payload above the size bound, throws ALIGNMENT_TOO_LARGE: callers deliver
 * before they record the trade, so such a request records nothing.
 */
export interface KvCacheDelivery {
  /** the JSON document, when it is answered inline (below the inline limit) */
  document: KvCacheDocument | null;
  alignment: AlignmentReport;
  /** the aligned payload's digest when W was applied: its download is the item's payload URL plus ?aligned=<digest> */
  alignedDigest: string | null;
}

/** What a purchase or use of an item says about its payload. */
export interface DeliveredItem {
  location: PayloadLocation;
  /** the model the item's row records; for payloads in the payload store it is the payload's own sourceModel */
  sourceModel: string | null;
}

/**
 * Owner recorded for aligned payloads the service derives: no user (ids are
 * positive), so nobody can publish them by digest as if they had uploaded them.
 */
const SERVICE_OWNER_ID = 0;

/** SHA-256 on the libuv thread pool (WebCrypto is asynchronous), so hashing a large aligned payload does not hold the event loop. */
async function sha256HexOffLoop(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest("SHA-256", bytes)).toString("hex");
}

type Plan = { ok: true; matrix: MatrixRow } | { ok: false; reason: string; matrixId?: number };

/** Which matrix applies, or why none does (cheap: one indexed query, no payload read). */
async function planAlignment(runtime: AlignmentRuntime, sourceModel: string | null, targetModel: string, keysShape: readonly number[]): Promise<Plan> {
  if (sourceModel === targetModel) return { ok: false, reason: "same model" };
  if (sourceModel === null) return { ok: false, reason: "the payload names no sourceModel; delivered as published" };
  const matrix = await runtime.matrices.newestActiveMatrix(sourceModel, targetModel);
  if (!matrix) return { ok: false, reason: `no active alignment matrix is registered for ${sourceModel} -> ${targetModel}; delivered as published` };
  const { k } = tensorRows({ shape: keysShape });
  if (k !== matrix.sourceDim) {
    return {
      ok: false,
      matrixId: matrix.id,
      reason:
        `the payload's last dimension is ${k} but alignment matrix ${matrix.id} has source_dim ${matrix.sourceDim} ` +
        `(it maps ${matrix.sourceDim} -> ${matrix.targetDim}); delivered as published`,
    };
  }
  return { ok: true, matrix };
}

/** Pool failures a client can act on become retryable overload answers; anything else stays internal. */
function poolFailure(error: unknown): never {
  if (error instanceof AlignmentPoolError) {
    if (error.code === "BUSY") throw new DomainError("OVERLOADED", "Every alignment worker is busy; retry shortly", undefined, 1);
    if (error.code === "CLOSED") throw new DomainError("OVERLOADED", "The service is shutting down; retry", undefined, 1);
  }
  throw error;
}

function tooLarge(message: string): DomainError {
  return new DomainError("ALIGNMENT_TOO_LARGE", `targetModel: ${message}`, [{ path: "targetModel", message }]);
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
  const record = (alignedDigest: string | null, refusal: string | null) =>
    runtime.matrices.recordAlignedPayload({ sourceDigest, matrixId: matrix.id, alignedDigest, metrics: JSON.stringify({ flops, metrics }), refusal });

  const overflowed = (["keys", "values"] as const).filter((field) => (field === "keys" ? keys : values).nonFiniteElements);
  if (overflowed.length > 0) {
    const where = overflowed.map((field) => `${field} (${parsed[field].dtype})`).join(" and ");
    const reason = `xW with alignment matrix ${matrix.id} overflows the finite range of ${where}; delivered as published`;
    await record(null, reason);
    return { ok: false, reason };
  }

  const aligned: ParsedKvCache = { ...parsed, sourceModel: targetModel, keys: keys.tensor, values: values.tensor };
  const bytes = kvCacheToSafetensors(aligned);
  const alignedDigest = await sha256HexOffLoop(bytes);
  const tensors = JSON.stringify({
    keys: { dtype: aligned.keys.dtype, shape: aligned.keys.shape },
    values: { dtype: aligned.values.dtype, shape: aligned.values.shape },
  });
  // The payload first, then the row naming it: a cache row never points at a payload that is not stored.
  await putPayloadYielding(store.payloads, { digest: alignedDigest, kind: "kv-cache", tensors, bytes, ownerId: SERVICE_OWNER_ID });
  await record(alignedDigest, null);
  return { ok: true, alignedDigest, alignedSize: bytes.length, flops, metrics, aligned };
}

/** A result computed before, or null when the cache holds none (or its payload went missing: it is then recomputed). */
async function cachedAlignment(store: Store, runtime: AlignmentRuntime, sourceDigest: string, matrixId: number): Promise<AlignOutcome | null> {
  const row = await runtime.matrices.findAlignedPayload(sourceDigest, matrixId);
  if (!row) return null;
  if (row.refusal !== null) return { ok: false, reason: row.refusal };
  const info = row.alignedDigest ? await store.payloads.info(row.alignedDigest) : null;
  if (!info) return null;
  const { flops, metrics } = JSON.parse(row.metrics) as Pick<Extract<AlignOutcome, { ok: true }>, "flops" | "metrics">;
  return { ok: true, alignedDigest: info.digest, alignedSize: info.size, flops, metrics };
}

interface AlignmentSource {
  /** the published payload's digest (the cache key) */
  digest: string;
  /** its size in bytes, held in memory while it is aligned */
  size: number;
  shapes: { keys: { shape: readonly number[] }; values: { shape: readonly number[] } };
  load(): Promise<ParsedKvCache>;
}

/** The cached result, a computation already running for it, or a new one (checked against the bounds first). */
async function alignedOutcome(
  store: Store,
  runtime: AlignmentRuntime,
  matrix: MatrixRow,
  source: AlignmentSource,
  targetModel: string,
): Promise<{ outcome: AlignOutcome; cached: boolean }> {
  const key = `${source.digest}:${matrix.id}`;
  const running = runtime.inflight.get(key);
  const found = running ? await running : await cachedAlignment(store, runtime, source.digest, matrix.id);
  if (found) {
    runtime.counters.cached++;
    return { outcome: found, cached: true };
  }

  const flops = kvCacheAlignmentFlops(source.shapes, matrix.targetDim);
  if (flops > runtime.maxFlops) {
    throw tooLarge(
      `aligning this payload with matrix ${matrix.id} (${matrix.sourceDim} -> ${matrix.targetDim}) takes ${flops} FLOPs, ` +
        `over the service's bound of ${runtime.maxFlops} (MEMORY_EXCHANGE_ALIGNMENT_MAX_GFLOP)`,
    );
  }
  if (source.size > runtime.maxPayloadBytes) {
    throw tooLarge(
      `the payload is ${source.size} bytes; alignment holds it in memory and accepts at most ${runtime.maxPayloadBytes} ` +
        "(MEMORY_EXCHANGE_ALIGNMENT_MAX_PAYLOAD_MB)",
    );
  }
  // Concurrent requests for the same result share one computation.
  const computation = source.load().then((parsed) => computeAlignment(store, runtime, parsed, matrix, source.digest, targetModel));
  runtime.inflight.set(key, computation);
  try {
    return { outcome: await computation, cached: false };
  } finally {
    runtime.inflight.delete(key);
  }
}

/** The aligned document inline when it fits the inline limit, else null (downloaded from the aligned payload URL). */
async function alignedDocument(store: Store, outcome: Extract<AlignOutcome, { ok: true }>, inlineLimitBytes: number): Promise<KvCacheDocument | null> {
  if (outcome.alignedSize > inlineLimitBytes) return null;
  let document: Record<string, unknown>;
  if (outcome.aligned) {
    document = kvCacheToDocument(outcome.aligned);
  } else {
    const bytes = await store.payloads.read(outcome.alignedDigest);
    if (!bytes) throw new Error(`aligned payload ${outcome.alignedDigest} is not stored`);
    document = safetensorsToKvCache(bytes);
  }
  recordPayloadBytes("out", outcome.alignedSize);
  return document as KvCacheDocument;
}

function appliedReport(
  matrix: MatrixRow,
  sourceModel: string,
  targetModel: string,
  outcome: Extract<AlignOutcome, { ok: true }>,
  cached: boolean,
): AlignmentReport {
  return {
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
  };
}

/**
 * The payload of a purchase or use for `targetModel` (see KvCacheDelivery).
 * Payloads in the payload store are aligned from their binary form, read only
 * when a matrix applies and no cached result exists; the older code's inline
 * JSON is aligned from its document, keyed by the SHA-256 of its canonical form.
 */
export async function deliverKvCache(
  store: Store,
  runtime: AlignmentRuntime,
  item: DeliveredItem,
  targetModel: string,
  inlineLimitBytes: number,
): Promise<KvCacheDelivery> {
  const { location } = item;
  const notApplied = (sourceModel: string | null, plan: { reason: string; matrixId?: number }, document: KvCacheDocument | null): KvCacheDelivery => ({
    document,
    alignment: { applied: false as const, reason: plan.reason, sourceModel, targetModel, ...(plan.matrixId === undefined ? {} : { matrixId: plan.matrixId }) },
    alignedDigest: null,
  });

  if (location.payloadDigest) {
    const info = await store.payloads.infoWithBytes(location.payloadDigest, inlineLimitBytes);
    if (!info) throw new Error(`payload ${location.payloadDigest} is referenced but not stored`);
    const shapes = JSON.parse(info.tensors) as AlignmentSource["shapes"];
    const asPublished = () => inlineKvCache(store, location, inlineLimitBytes, info);
    const plan = await planAlignment(runtime, item.sourceModel, targetModel, shapes.keys.shape);
    if (!plan.ok) return notApplied(item.sourceModel, plan, await asPublished());
    if (info.kind !== "kv-cache") {
      return notApplied(
        item.sourceModel,
        {
          matrixId: plan.matrix.id,
          reason: "the payload file holds tensors besides keys and values, which alignment does not map; delivered as published by download",
        },
        await asPublished(),
      );
    }
    const { outcome, cached } = await alignedOutcome(store, runtime, plan.matrix, {
      digest: info.digest,
      size: info.size,
      shapes,
      load: async () => safetensorsToParsedKvCache(await readPayloadYielding(store.payloads, info)),
    }, targetModel);
    if (!outcome.ok) return notApplied(item.sourceModel, { reason: outcome.reason, matrixId: plan.matrix.id }, await asPublished());
    return {
      document: await alignedDocument(store, outcome, inlineLimitBytes),
      alignment: appliedReport(plan.matrix, item.sourceModel!, targetModel, outcome, cached),
      alignedDigest: outcome.alignedDigest,
    };
  }

  // The older code's inline JSON: small (a TEXT column), aligned from its document.
  const published = await inlineKvCache(store, location, inlineLimitBytes);
  if (!published) return { document: null, alignment: notInlinedAlignment(item.sourceModel, targetModel, location.payloadSize), alignedDigest: null };
  const sourceModel = typeof published.sourceModel === "string" ? published.sourceModel : null;
  const analysis = analyzeKvCache(published, { maxElements: Number.MAX_SAFE_INTEGER });
  if (!analysis.ok) {
    const reason =
      sourceModel === targetModel ? "same model" : `the stored payload is not a valid KV cache (${analysis.issues[0]?.message}); delivered as published`;
    return notApplied(sourceModel, { reason }, published);
  }
  const parsed = analysis.payload;
  const plan = await planAlignment(runtime, sourceModel, targetModel, parsed.keys.shape);
  if (!plan.ok) return notApplied(sourceModel, plan, published);
  const canonical = kvCacheToSafetensors(parsed);
  const { outcome, cached } = await alignedOutcome(
    store,
    runtime,
    plan.matrix,
    { digest: sha256Hex(canonical), size: canonical.length, shapes: parsed, load: async () => parsed },
    targetModel,
  );
  if (!outcome.ok) return notApplied(sourceModel, { reason: outcome.reason, matrixId: plan.matrix.id }, published);
  return {
    document: await alignedDocument(store, outcome, inlineLimitBytes),
    alignment: appliedReport(plan.matrix, sourceModel!, targetModel, outcome, cached),
    alignedDigest: outcome.alignedDigest,
  };
}

/** The payload URL of an item, or of its aligned payload when W was applied. */
export function alignedPayloadUrl(payloadUrl: string, alignedDigest: string | null): string {
  if (!alignedDigest) return payloadUrl;
  return `${payloadUrl}${payloadUrl.includes("?") ? "&" : "?"}aligned=${alignedDigest}`;
}

/** The `aligned` query parameter of a payload download: absent, or a digest (400 otherwise). */
export function alignedDigestParam(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const parsed = payloadDigestSchema.safeParse(value);
  if (!parsed.success) throw invalidInput("aligned", "must be the digest of an aligned payload (64 hex digits), as in the payloadUrl a purchase or use answered");
  return parsed.data;
}

/**
 * Where the download of `?aligned=<digest>` reads from: the aligned payload,
 * provided it is an alignment of this item's payload (the caller has already
 * checked the user may download the item).
 */
export async function alignedPayloadLocation(
  runtime: AlignmentRuntime,
  location: Pick<PayloadLocation, "payloadDigest" | "inlineJson">,
  alignedDigest: string,
): Promise<{ payloadDigest: string; inlineJson: null }> {
  let sourceDigest = location.payloadDigest;
  if (!sourceDigest && location.inlineJson) {
    let document: unknown = null;
    try {
      document = JSON.parse(location.inlineJson);
    } catch {
      // not JSON: it has no aligned payload
    }
    const analysis = analyzeKvCache(document, { maxElements: Number.MAX_SAFE_INTEGER });
    if (analysis.ok) sourceDigest = sha256Hex(kvCacheToSafetensors(analysis.payload));
  }
  if (!sourceDigest || !(await runtime.matrices.isAlignedPayloadOf(sourceDigest, alignedDigest))) {
    throw notFound(`aligned payload ${alignedDigest} of this item`);
  }
  return { payloadDigest: alignedDigest, inlineJson: null };
}
