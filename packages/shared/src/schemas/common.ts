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

/** How a purchase or use treated the requested target model. */
export const alignmentReportSchema = z.union([
  z.object({
    applied: z.literal(false),
    reason: z.string(),
    sourceModel: z.string().nullable(),
    targetModel: z.string(),
  }),
  z.object({
    applied: z.literal(true),
    matrixId: z.number().int(),
    sourceModel: z.string(),
    targetModel: z.string(),
    sourceDim: z.number().int(),
    targetDim: z.number().int(),
    cached: z.boolean(),
    metrics: z.record(z.string(), z.number()),
  }),
]);
export type AlignmentReport = z.infer<typeof alignmentReportSchema>;
