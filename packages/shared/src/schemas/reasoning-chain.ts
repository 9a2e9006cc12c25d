import { z } from "zod";
import { priceFilterSchema, priceSchema } from "../money.js";
import {
  alignmentReportSchema,
  boundedJsonObjectSchema,
  boundedJsonSchema,
  cursorSchema,
  idSchema,
  limitSchema,
  modelNameSchema,
  offsetSchema,
} from "./common.js";
import { kvCacheDocumentSchema, kvCacheOutputSchema } from "./kv-cache.js";
import { descriptionSchema, payloadUrlSchema } from "./memory.js";
import { payloadDigestSchema, requireOnePayload } from "./payload.js";

const requiredText = (max: number) =>
  z
    .string({ error: "must be a string" })
    .trim()
    .min(1, "must not be empty")
    .max(max, `must be at most ${max} characters`);

export const publishChainInput = z
  .object({
    chainName: requiredText(255),
    description: descriptionSchema.trim().min(1, "must not be empty"),
    category: requiredText(100),
    kvCacheSnapshot: kvCacheDocumentSchema.optional(),
    /** digest returned by `PUT /api/v1/payloads` (your own upload) instead of inline `kvCacheSnapshot` */
    kvCacheRef: payloadDigestSchema.optional(),
    sourceModel: modelNameSchema,
    pricePerUse: priceSchema,
    inputExample: boundedJsonSchema().optional(),
    outputExample: boundedJsonSchema().optional(),
    stepCount: z
      .number({ error: "must be a positive integer" })
      .int("must be a positive integer")
      .min(1, "must be a positive integer")
      .max(1_000_000, "must be at most 1000000")
      .optional(),
  })
  .superRefine(requireOnePayload("kvCacheSnapshot", "kvCacheRef"));

export const publishChainOutput = z.object({ chainId: z.number().int() });

export const CHAIN_STATUSES = ["draft", "active", "inactive"] as const;

export const reasoningChainSchema = z.object({
  id: z.number().int(),
  creatorId: z.number().int(),
  chainName: z.string(),
  description: z.string(),
  category: z.string(),
  sourceModel: z.string(),
  stepCount: z.number().int().nullable(),
  pricePerUse: z.number(),
  usageCount: z.number().int(),
  totalRevenue: z.number(),
  avgQuality: z.number().nullable(),
  reviewCount: z.number().int(),
  inputExample: z.unknown(),
  outputExample: z.unknown(),
  status: z.enum(CHAIN_STATUSES),
  payloadSize: z.number().int().nullable(),
  payloadDigest: z.string().nullable(),
  createdAt: z.date(),
});
export type ReasoningChain = z.infer<typeof reasoningChainSchema>;

export const useChainInput = z.object({
  chainId: idSchema,
  inputData: boundedJsonObjectSchema(),
  targetModel: modelNameSchema,
});

export const useChainOutput = z.object({
  transactionId: z.number().int(),
  chain: reasoningChainSchema,
  /** inline only below the service's inline limit; above it, download from payloadUrl */
  kvCacheSnapshot: kvCacheOutputSchema.optional(),
  /** the binary download of this use's payload (carries the transaction id) */
  payloadUrl: payloadUrlSchema,
  alignment: alignmentReportSchema,
});

export const browseChainsInput = z.object({
  category: z.string().trim().min(1).max(100, "must be at most 100 characters").optional(),
  sourceModel: modelNameSchema.optional(),
  minPrice: priceFilterSchema.optional(),
  maxPrice: priceFilterSchema.optional(),
  limit: limitSchema(20),
  offset: offsetSchema,
  cursor: cursorSchema.optional(),
});

export const browseChainsOutput = z.object({
  chains: z.array(reasoningChainSchema),
  count: z.number().int(),
  nextCursor: z.string().nullable(),
});

export const getChainInput = z.object({ chainId: idSchema });
