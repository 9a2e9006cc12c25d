import type { Dtype, MatrixStatus } from "@memory-exchange/shared";
import { and, desc, eq, type AnyColumn, type Placeholder, type SQL } from "drizzle-orm";

/**
 * Storage of the alignment registry and of the aligned-result cache. The
 * matrices' data and the aligned payloads themselves live in the payload
 * store (content-addressed); these tables hold what points at them. Two
 * implementations (MySQL family, SQLite), the same contract.
 */

/** A row of `mx_alignment_matrices`. */
export interface MatrixRow {
  id: number;
  sourceModel: string;
  targetModel: string;
  sourceDim: number;
  targetDim: number;
  dtype: Dtype;
  /** payload-store digest of the safetensors file holding W */
  digest: string;
  version: string | null;
  description: string | null;
  status: MatrixStatus;
  publisherId: number;
  createdAt: Date;
}

export type NewMatrix = Omit<MatrixRow, "id" | "status" | "createdAt">;

export interface MatrixFilter {
  sourceModel?: string;
  targetModel?: string;
  status?: MatrixStatus;
  limit: number;
  offset: number;
}

/**
 * A row of `mx_aligned_payloads`: what aligning one payload with one matrix
 * gave. Either an aligned payload (its digest and the metrics JSON) or a
 * refusal found only by computing (the product overflows the dtype), so a
 * repeat never recomputes either.
 */
export interface AlignedPayloadRow {
  sourceDigest: string;
  matrixId: number;
  alignedDigest: string | null;
  /** JSON: {flops, metrics: {keys, values}} */
  metrics: string;
  refusal: string | null;
}

export interface AlignmentStore {
  insertMatrix(matrix: NewMatrix): Promise<number>;
  findMatrix(id: number): Promise<MatrixRow | null>;
  /** Newest first (created time, then id). */
  listMatrices(filter: MatrixFilter): Promise<MatrixRow[]>;
  /** The matrix purchases apply for the pair: the newest active one. */
  newestActiveMatrix(sourceModel: string, targetModel: string): Promise<MatrixRow | null>;
  setMatrixStatus(id: number, status: MatrixStatus): Promise<void>;

  findAlignedPayload(sourceDigest: string, matrixId: number): Promise<AlignedPayloadRow | null>;
  /** Whether `alignedDigest` is a recorded alignment of `sourceDigest` (downloads of aligned payloads check it). */
  isAlignedPayloadOf(sourceDigest: string, alignedDigest: string): Promise<boolean>;
  /** Records a result; when two requests computed the same one concurrently, the first row stays (both are identical). */
  recordAlignedPayload(row: AlignedPayloadRow): Promise<void>;
}

interface MatrixColumns {
  sourceModel: AnyColumn;
  targetModel: AnyColumn;
  status: AnyColumn;
  createdAt: AnyColumn;
  id: AnyColumn;
}

/** A filter value, or a placeholder for it in a prepared statement (store/prepared.ts). */
type Bound<T> = { [K in keyof T]: T[K] | Placeholder };

/** The filter of a matrix listing, the same for both dialects. */
export function matrixConditions(t: MatrixColumns, filter: Bound<Omit<MatrixFilter, "limit" | "offset">>): SQL | undefined {
  return and(
    filter.sourceModel === undefined ? undefined : eq(t.sourceModel, filter.sourceModel),
    filter.targetModel === undefined ? undefined : eq(t.targetModel, filter.targetModel),
    filter.status === undefined ? undefined : eq(t.status, filter.status),
  );
}

/** Newest first; ids are not assumed consecutive, so the creation time leads and the id breaks ties. */
export const newestFirst = (t: MatrixColumns) => [desc(t.createdAt), desc(t.id)];
