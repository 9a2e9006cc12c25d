import type { AlignmentTensorMetrics, ParsedKvCache } from "@memory-exchange/shared";
import type { Database } from "../db/open-database.js";
import type { PayloadStore } from "../store/payload-store.js";
import type { AlignmentStore } from "./alignment-store.js";
import { createAlignmentStore } from "./create-alignment-store.js";
import { withMatrixCache } from "./matrix-cache.js";
import { createMatrixWeights, type MatrixWeights } from "./matrix-weights.js";
import { createAlignmentPool, type AlignmentPool } from "./worker-pool.js";

/** What aligning one payload with one matrix gave: the aligned payload, or why it cannot be delivered. */
export type AlignOutcome =
  | {
      ok: true;
      /** the aligned payload in the payload store */
      alignedDigest: string;
      alignedSize: number;
      flops: number;
      metrics: { keys: AlignmentTensorMetrics; values: AlignmentTensorMetrics };
      /** the aligned payload itself when it was just computed (a cached one is read back when needed) */
      aligned?: ParsedKvCache;
    }
  | { ok: false; reason: string };

/** What purchase/use and the alignment procedures need to register and apply matrices. */
export interface AlignmentRuntime {
  matrices: AlignmentStore;
  pool: AlignmentPool;
  weights: MatrixWeights;
  /** MEMORY_EXCHANGE_ALIGNMENT_MAX_GFLOP in FLOPs: larger alignments answer ALIGNMENT_TOO_LARGE */
  maxFlops: number;
  /** MEMORY_EXCHANGE_ALIGNMENT_MAX_PAYLOAD_MB in bytes: a payload is held in memory while aligned */
  maxPayloadBytes: number;
  /** Alignments computed on the pool and answered from the cache since start (metrics, tests). */
  readonly counters: { computed: number; cached: number };
  /** Computations running, by "sourceDigest:matrixId": concurrent requests for one result share it. */
  readonly inflight: Map<string, Promise<AlignOutcome>>;
  /** Stops the workers (jobs still running are rejected). */
  close(): Promise<void>;
}

export interface AlignmentRuntimeOptions {
  maxFlops: number;
  maxPayloadBytes: number;
  /** worker threads; default: available cores - 1, at least 1 */
  workers?: number;
  /** how long the matrix a pair's purchases apply is kept (matrix-cache.ts; the read cache's TTL); 0 or absent = looked up every time */
  matrixCacheTtlMs?: number;
}

export function createAlignmentRuntime(database: Database, payloads: PayloadStore, options: AlignmentRuntimeOptions): AlignmentRuntime {
  // Workers start on the first job, so a server that never aligns never spawns one.
  const pool = createAlignmentPool({ size: options.workers });
  return {
    matrices: withMatrixCache(createAlignmentStore(database), { ttlMs: options.matrixCacheTtlMs ?? 0 }),
    pool,
    weights: createMatrixWeights(payloads),
    maxFlops: options.maxFlops,
    maxPayloadBytes: options.maxPayloadBytes,
    counters: { computed: 0, cached: 0 },
    inflight: new Map(),
    close: () => pool.close(),
  };
}
