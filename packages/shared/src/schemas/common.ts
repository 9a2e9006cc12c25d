import { z } from "zod";
import { TOO_LARGE_ISSUE_PARAMS } from "../errors.js";

/** A database id on the wire: a positive integer that fits a signed INT. */
export const idSchema = z
  .number({ error: "must be a positive integer" })
  .int("must be a positive integer")
  .positive("must be a positive integer")
  .max(2_147_483_647, "is too large");

export const modelNameSchema = z
  .string({ error: "must be a string" })
  .trim()
  .min(1, "must not be empty")
  .max(50, "must be at most 50 characters");

export const limitSchema = (defaultLimit: number) =>
  z
    .number({ error: "must be an integer between 1 and 100" })
    .int("must be an integer between 1 and 100")
    .min(1, "must be an integer between 1 and 100")
    .max(100, "must be an integer between 1 and 100")
    .default(defaultLimit);

export const offsetSchema = z
  .number({ error: "must be a non-negative integer" })
  .int("must be a non-negative integer")
  .min(0, "must be a non-negative integer")
  .max(1_000_000, "must be at most 1000000")
  .default(0);

/** Opaque keyset cursor returned as `nextCursor` by browse calls. */
export const cursorSchema = z.string().min(1).max(200);

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** 64 KiB less one byte: what a TEXT column (input_example, output_example) holds. */
export const MAX_JSON_FIELD_BYTES = 65_535;

function jsonByteLength(value: unknown): number | null {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? null : new TextEncoder().encode(text).length;
  } catch {
    return null;
  }
}

/** Any JSON value whose serialized form fits `maxBytes` (the TEXT columns it lands in). */
export const boundedJsonSchema = (maxBytes = MAX_JSON_FIELD_BYTES) =>
  z.custom<JsonValue>().superRefine((value, ctx) => {
    const size = jsonByteLength(value);
    if (size === null) ctx.addIssue({ code: "custom", message: "must be a JSON value" });
    else if (size > maxBytes) ctx.addIssue({ code: "custom", message: `must serialize to at most ${maxBytes} bytes (got ${size})`, params: TOO_LARGE_ISSUE_PARAMS });
  });

/** A JSON object (not an array or scalar) whose serialized form fits `maxBytes`. */
export const boundedJsonObjectSchema = (maxBytes = MAX_JSON_FIELD_BYTES) =>
  z.custom<{ [key: string]: JsonValue }>().superRefine((value, ctx) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      ctx.addIssue({ code: "custom", message: "must be a JSON object" });
      return;
    }
    const size = jsonByteLength(value);
    if (size === null) ctx.addIssue({ code: "custom", message: "must be a JSON object" });
    else if (size > maxBytes) ctx.addIssue({ code: "custom", message: `must serialize to at most ${maxBytes} bytes (got ${size})`, params: TOO_LARGE_ISSUE_PARAMS });
  });

/**
 * What xW did to one tensor's vectors, computed from the data (float64
 * arithmetic over the values actually delivered). Ratios are null when no
 * vector can be measured (all zero or non-finite).
 */
export const alignmentTensorMetricsSchema = z.object({
  /** vectors (rows) mapped */
  vectors: z.number().int(),
  /** vectors with ‖x‖ = 0, left out of the ratios */
  zeroVectors: z.number().int(),
  /** vectors with a non-finite input or output, left out of the ratios */
  nonFiniteVectors: z.number().int(),
  /** mean / min / max over vectors of ‖xW‖² / ‖x‖² */
  energyRetentionMean: z.number().nullable(),
  energyRetentionMin: z.number().nullable(),
  energyRetentionMax: z.number().nullable(),
  /** Σ‖xW‖² / Σ‖x‖² */
  energyRetentionTotal: z.number().nullable(),
  /** square W only: mean cosine between x and xW (null otherwise) */
  cosineToIdentity: z.number().nullable(),
  /** vectors with xW = 0, left out of cosineToIdentity */
  cosineSkipped: z.number().int(),
});
export type AlignmentTensorMetrics = z.infer<typeof alignmentTensorMetricsSchema>;

/** How a purchase or use treated the requested target model. */
export const alignmentReportSchema = z.union([
  z.object({
    applied: z.literal(false),
    reason: z.string(),
    sourceModel: z.string().nullable(),
    targetModel: z.string(),
    /** the matrix that was found but could not be applied (dimension mismatch, overflow) */
    matrixId: z.number().int().optional(),
  }),
  z.object({
    applied: z.literal(true),
    matrixId: z.number().int(),
    matrixVersion: z.string().nullable(),
    sourceModel: z.string(),
    targetModel: z.string(),
    sourceDim: z.number().int(),
    targetDim: z.number().int(),
    /** true when the aligned payload was read from the cache (same payload, same matrix) instead of computed */
    cached: z.boolean(),
    /** floating-point operations of xW over keys and values: 2 × vectors × source_dim × target_dim each */
    flops: z.number().int(),
    metrics: z.object({ keys: alignmentTensorMetricsSchema, values: alignmentTensorMetricsSchema }),
  }),
]);
export type AlignmentReport = z.infer<typeof alignmentReportSchema>;
