import { z } from "zod";
import {
  analyzeEncoded,
  analyzeNested,
  float64ArrayBytes,
  flattenNested,
  isEncodedTensor,
  type Dtype,
  type TensorIssueCode,
} from "../tensor/index.js";
import { idSchema, limitSchema, modelNameSchema, offsetSchema } from "./common.js";
import { MAX_TENSOR_ELEMENTS, type EncodedTensor } from "./kv-cache.js";
import { descriptionSchema } from "./memory.js";
import { payloadDigestSchema } from "./payload.js";

/** Largest alignment matrix (source_dim × target_dim elements) accepted inline or by digest. */
export const MAX_MATRIX_ELEMENTS = MAX_TENSOR_ELEMENTS;

export const MATRIX_STATUSES = ["active", "inactive"] as const;
export const matrixStatusSchema = z.enum(MATRIX_STATUSES, { error: `must be one of ${MATRIX_STATUSES.join(", ")}` });
export type MatrixStatus = z.infer<typeof matrixStatusSchema>;

/** A matrix W as sent: a 2-D nested array, the compact encoding with a 2-D shape, or the digest of an upload. */
export type MatrixInput = number[][] | EncodedTensor | string;

/** W (rows = source_dim, cols = target_dim) validated, as little-endian row-major bytes. */
export interface ParsedMatrix {
  /** nested arrays arrive (and are stored) as float64 */
  form: "nested" | "encoded";
  dtype: Dtype;
  sourceDim: number;
  targetDim: number;
  bytes: Uint8Array;
}

/** Where the matrix of a publish comes from: sent inline, or a safetensors file the caller uploaded. */
export type MatrixSource = { kind: "inline"; matrix: ParsedMatrix } | { kind: "ref"; digest: string };

export type MatrixAnalysis =
  | { ok: true; matrix: ParsedMatrix }
  | { ok: false; path: (string | number)[]; message: string; code: TensorIssueCode };

/**
 * Validates an inline matrix: a rectangular 2-D nested array of finite numbers
 * or a compact encoding whose shape is [source_dim, target_dim], at most
 * MAX_MATRIX_ELEMENTS elements.
 */
export function analyzeMatrix(value: unknown, maxElements = MAX_MATRIX_ELEMENTS): MatrixAnalysis {
  if (Array.isArray(value)) {
    const r = analyzeNested(value, { maxElements, maxRank: 2 });
    if (!r.ok) return r;
    if (r.shape.length !== 2) {
      return { ok: false, path: [], message: `must be a 2-D array [source_dim][target_dim], got rank ${r.shape.length}`, code: "invalid" };
    }
    const [sourceDim, targetDim] = r.shape as [number, number];
    const bytes = float64ArrayBytes(flattenNested(value, r.shape));
    return { ok: true, matrix: { form: "nested", dtype: "float64", sourceDim, targetDim, bytes } };
  }
  if (isEncodedTensor(value) || (typeof value === "object" && value !== null)) {
    const r = analyzeEncoded(value, { maxElements });
    if (!r.ok) return r;
    if (r.shape.length !== 2) {
      return { ok: false, path: ["shape"], message: `must be [source_dim, target_dim], got [${r.shape.join(", ")}]`, code: "invalid" };
    }
    const [sourceDim, targetDim] = r.shape as [number, number];
    return { ok: true, matrix: { form: "encoded", dtype: r.dtype, sourceDim, targetDim, bytes: r.bytes } };
  }
  return {
    ok: false,
    path: [],
    message: "must be a 2-D nested array, a compact tensor {dtype, shape, data}, or the digest of an uploaded safetensors file",
    code: "invalid",
  };
}

const MATRIX_DOC = {
  description:
    "W, source_dim × target_dim: a 2-D nested array of finite numbers, a compact tensor {dtype, shape: [source_dim, target_dim], data}, " +
    "or the digest (64 hex digits) of a safetensors file you uploaded with PUT /api/v1/payloads holding one 2-D tensor (named `w` or `matrix`).",
  oneOf: [
    { type: "array", items: { type: "array", items: { type: "number" }, minItems: 1 }, minItems: 1 },
    {
      type: "object",
      required: ["dtype", "shape", "data"],
      properties: {
        dtype: { type: "string", enum: ["float16", "bfloat16", "float32", "float64"] },
        shape: { type: "array", items: { type: "integer", minimum: 1 }, minItems: 2, maxItems: 2 },
        data: { type: "string", contentEncoding: "base64" },
      },
    },
    { type: "string", pattern: "^[0-9a-fA-F]{64}$" },
  ],
};

/** The `matrix` field: validated once here; the parsed bytes travel on, nothing downstream walks the JSON again. */
export const matrixInputSchema = z
  .custom<MatrixInput>((value) => value !== undefined && value !== null, { error: "is required" })
  .meta(MATRIX_DOC)
  .transform((value, ctx): MatrixSource => {
    if (typeof value === "string") {
      const digest = payloadDigestSchema.safeParse(value);
      if (digest.success) return { kind: "ref", digest: digest.data };
      for (const issue of digest.error.issues) ctx.addIssue({ code: "custom", message: issue.message });
      return z.NEVER;
    }
    const r = analyzeMatrix(value);
    if (r.ok) return { kind: "inline", matrix: r.matrix };
    ctx.addIssue({ code: "custom", message: r.message, path: r.path });
    return z.NEVER;
  });

export const matrixVersionSchema = z
  .string({ error: "must be a string" })
  .trim()
  .min(1, "must not be empty")
  .max(20, "must be at most 20 characters");

export const publishMatrixInput = z
  .object({
    sourceModel: modelNameSchema,
    targetModel: modelNameSchema,
    matrix: matrixInputSchema,
    /** free label, e.g. "1.0.0" (the older code's w_matrix_version) */
    version: matrixVersionSchema.optional(),
    description: descriptionSchema.optional(),
  })
  .superRefine((value, ctx) => {
    if (value.sourceModel === value.targetModel) {
      ctx.addIssue({ code: "custom", path: ["targetModel"], message: "must differ from sourceModel (a model needs no alignment to itself)" });
    }
  });

export const publishMatrixOutput = z.object({
  matrixId: z.number().int(),
  sourceDim: z.number().int(),
  targetDim: z.number().int(),
});

/** A registered matrix as listed: never its data. */
export const alignmentMatrixSchema = z.object({
  id: z.number().int(),
  sourceModel: z.string(),
  targetModel: z.string(),
  sourceDim: z.number().int(),
  targetDim: z.number().int(),
  dtype: z.enum(["float16", "bfloat16", "float32", "float64"]),
  version: z.string().nullable(),
  description: z.string().nullable(),
  status: matrixStatusSchema,
  publisherId: z.number().int(),
  /** SHA-256 of the stored safetensors file holding W */
  digest: z.string(),
  createdAt: z.date(),
});
export type AlignmentMatrix = z.infer<typeof alignmentMatrixSchema>;

export const listMatricesInput = z.object({
  sourceModel: modelNameSchema.optional(),
  targetModel: modelNameSchema.optional(),
  status: matrixStatusSchema.optional(),
  limit: limitSchema(100),
  offset: offsetSchema,
});

/** Newest first: for each pair the first active entry is the one purchases apply. */
export const listMatricesOutput = z.object({ matrices: z.array(alignmentMatrixSchema) });

export const setMatrixStatusInput = z.object({ matrixId: idSchema, status: matrixStatusSchema });
export const setMatrixStatusOutput = alignmentMatrixSchema;
