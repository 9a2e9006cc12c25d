import { z } from "zod";
import { priceFilterSchema, priceSchema } from "../money.js";
import {
  alignmentReportSchema,
  cursorSchema,
  idSchema,
  limitSchema,
  modelNameSchema,
  offsetSchema,
} from "./common.js";
import { kvCacheDocumentSchema, kvCacheOutputSchema } from "./kv-cache.js";
import { payloadDigestSchema, requireOnePayload } from "./payload.js";

export const MEMORY_TYPES = ["kv_cache", "reasoning_chain", "long_term_memory"] as const;
export const memoryTypeSchema = z.enum(MEMORY_TYPES, {
  error: `must be one of ${MEMORY_TYPES.join(", ")}`,
});
export type MemoryType = z.infer<typeof memoryTypeSchema>;

export const descriptionSchema = z
  .string({ error: "must be a string" })
  .max(10_000, "must be at most 10000 characters");

export const publishMemoryInput = z
  .object({
    memoryType: memoryTypeSchema,
    kvCacheData: kvCacheDocumentSchema.optional(),
    /** digest returned by `PUT /api/v1/payloads` (your own upload) instead of inline `kvCacheData` */
    kvCacheRef: payloadDigestSchema.optional(),
    price: priceSchema,
    description: descriptionSchema.optional(),
  })
  .superRefine(requireOnePayload("kvCacheData", "kvCacheRef"));

export const publishMemoryOutput = z.object({ memoryId: z.number().int() });

export const LISTING_STATUSES = ["available", "sold", "withdrawn"] as const;

/** A listing as browse shows it: never the payload. */
export const memoryListingSchema = z.object({
  id: z.number().int(),
  sellerId: z.number().int(),
  memoryType: memoryTypeSchema,
  sourceModel: z.string().nullable(),
  description: z.string().nullable(),
  price: z.number(),
  status: z.enum(LISTING_STATUSES),
  tokenCount: z.number().int().nullable(),
  contextLength: z.number().int().nullable(),
  qualityScore: z.number().nullable(),
  payloadSize: z.number().int().nullable(),
  payloadDigest: z.string().nullable(),
  createdAt: z.date(),
});
export type MemoryListing = z.infer<typeof memoryListingSchema>;

export const browseMemoriesInput = z.object({
  memoryType: memoryTypeSchema.optional(),
  sourceModel: modelNameSchema.optional(),
  minPrice: priceFilterSchema.optional(),
  maxPrice: priceFilterSchema.optional(),
  limit: limitSchema(20),
  offset: offsetSchema,
  cursor: cursorSchema.optional(),
});

export const browseMemoriesOutput = z.object({
  memories: z.array(memoryListingSchema),
  count: z.number().int(),
  nextCursor: z.string().nullable(),
});

export const getMemoryInput = z.object({ memoryId: idSchema });

/** Where an entitled user downloads the payload as safetensors (relative to the service's base URL). */
export const payloadUrlSchema = z.string();

/** A listing's detail: the payload only for its seller and buyers. */
export const memoryDetailSchema = memoryListingSchema.extend({
  /** true for the seller and for anyone who bought it */
  entitled: z.boolean(),
  /** entitled users, when the payload is below the inline limit */
  kvCacheData: kvCacheOutputSchema.optional(),
  /** entitled users: the binary download (always usable; the only way above the inline limit) */
  payloadUrl: payloadUrlSchema.optional(),
});
export type MemoryDetail = z.infer<typeof memoryDetailSchema>;

export const purchaseMemoryInput = z.object({
  memoryId: idSchema,
  targetModel: modelNameSchema,
});

export const purchaseMemoryOutput = z.object({
  transactionId: z.number().int(),
  /** false when this buyer had already bought the listing: the earlier transaction is returned, nothing is charged */
  newPurchase: z.boolean(),
  /** kvCacheData is inline only below the service's inline limit; above it, download from payloadUrl */
  memory: memoryListingSchema.extend({ kvCacheData: kvCacheOutputSchema.optional() }),
  payloadUrl: payloadUrlSchema,
  alignment: alignmentReportSchema,
});

export const TRANSACTION_ROLES = ["buyer", "seller"] as const;

export const transactionSchema = z.object({
  id: z.number().int(),
  role: z.enum(TRANSACTION_ROLES),
  memoryId: z.number().int().nullable(),
  chainId: z.number().int().nullable(),
  memoryType: memoryTypeSchema,
  sellerId: z.number().int(),
  buyerId: z.number().int(),
  price: z.number(),
  sourceModel: z.string().nullable(),
  targetModel: z.string().nullable(),
  status: z.enum(["pending", "completed", "failed"]),
  createdAt: z.date(),
});
export type Transaction = z.infer<typeof transactionSchema>;

export const historyInput = z.object({
  role: z.enum(["buyer", "seller", "both"], { error: "must be one of buyer, seller, both" }).default("both"),
  limit: limitSchema(50),
  offset: offsetSchema,
});

export const historyOutput = z.object({
  transactions: z.array(transactionSchema),
  count: z.number().int(),
});
