import { z } from "zod";
import { TOO_LARGE_ISSUE_PARAMS } from "../errors.js";
import { analyzeKvCache, type Dtype, type ParsedKvCache } from "../tensor/index.js";

export type NestedTensor = number[] | number[][] | number[][][] | number[][][][];
export interface EncodedTensor {
  dtype: Dtype;
  shape: number[];
  /** base64 of the little-endian, row-major element bytes */
  data: string;
}
export type TensorInput = NestedTensor | EncodedTensor;

/** A KV-cache snapshot as published: its own keys are kept exactly as sent. */
export interface KvCacheDocument {
  sourceModel: string;
  keys: TensorInput;
  values: TensorInput;
  metadata?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Upper bound on keys + values elements in one JSON payload (64 MiB of JSON holds ~8M numbers). */
export const MAX_TENSOR_ELEMENTS = 16 * 1024 * 1024;

/**
 * Validates a KV-cache document (shape, finiteness, rank, limits) once and
 * hands the parsed binary form on, so nothing downstream walks it again.
 */
export const kvCacheDocumentSchema = z
  .custom<KvCacheDocument>((value) => typeof value === "object" && value !== null && !Array.isArray(value), {
    error: "must be a KV-cache object with sourceModel, keys and values",
  })
  .transform((value, ctx): ParsedKvCache => {
    const result = analyzeKvCache(value, { maxElements: MAX_TENSOR_ELEMENTS });
    if (result.ok) return result.payload;
    for (const issue of result.issues)
      ctx.addIssue({
        code: "custom",
        message: issue.message,
        path: issue.path,
        ...(issue.code === "too_large" ? { params: TOO_LARGE_ISSUE_PARAMS } : {}),
      });
    return z.NEVER;
  });

export const kvCacheOutputSchema = z.custom<KvCacheDocument>();
