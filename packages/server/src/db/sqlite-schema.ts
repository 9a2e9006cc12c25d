import { sql } from "drizzle-orm";
import { blob, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

// SQLite has no DECIMAL: DECIMAL(p,2) columns hold integer hundredths (money in
// cents), which is exact and sums exactly. Timestamps are integer milliseconds.
const hundredths = (name: string) => integer(name);
const millis = (name: string) => integer(name, { mode: "timestamp_ms" });
const now = sql`(cast(unixepoch('subsec') * 1000 as integer))`;

// ---- legacy tables (same names and columns as the MySQL ones) ----

export const memoryExchanges = sqliteTable(
  "memory_exchanges",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    sellerId: integer("seller_id").notNull(),
    buyerId: integer("buyer_id").notNull(),
    memoryType: text("memory_type", { enum: ["kv_cache", "reasoning_chain", "long_term_memory"] }).notNull(),
    kvCacheData: text("kv_cache_data"),
    wMatrixVersion: text("w_matrix_version"),
    sourceModel: text("source_model"),
    targetModel: text("target_model"),
    contextLength: integer("context_length"),
    tokenCount: integer("token_count"),
    priceCents: hundredths("price").notNull(),
    qualityScore: hundredths("quality_score"),
    alignmentQuality: text("alignment_quality"),
    status: text("status", { enum: ["pending", "completed", "failed"] }).notNull().default("pending"),
    createdAt: millis("createdAt").notNull().default(now),
    description: text("description"),
    listingId: integer("listing_id"),
    chainId: integer("chain_id"),
    payloadDigest: text("payload_digest"),
    payloadSize: integer("payload_size"),
  },
  (t) => [
    index("seller_idx").on(t.sellerId),
    index("buyer_idx").on(t.buyerId),
    index("memory_type_idx").on(t.memoryType),
    index("status_idx").on(t.status),
    uniqueIndex("mx_listing_buyer_uq").on(t.listingId, t.buyerId),
    index("mx_status_created_idx").on(t.status, t.createdAt, t.id),
    index("mx_for_sale_created_idx").on(t.status, t.buyerId, t.listingId, t.chainId, t.createdAt, t.id),
    index("mx_chain_idx").on(t.chainId),
  ],
);

export const reasoningChains = sqliteTable(
  "reasoning_chains",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    creatorId: integer("creator_id").notNull(),
    chainName: text("chain_name").notNull(),
    description: text("description").notNull(),
    category: text("category").notNull(),
    inputExample: text("input_example"),
    outputExample: text("output_example"),
    kvCacheSnapshot: text("kv_cache_snapshot"),
    sourceModel: text("source_model").notNull(),
    wMatrixVersion: text("w_matrix_version"),
    stepCount: integer("step_count"),
    avgQuality: hundredths("avg_quality").default(0),
    reviewCount: integer("review_count").notNull().default(0),
    pricePerUseCents: hundredths("price_per_use").notNull(),
    usageCount: integer("usage_count").notNull().default(0),
    totalRevenueCents: hundredths("total_revenue").notNull().default(0),
    status: text("status", { enum: ["draft", "active", "inactive"] }).notNull().default("draft"),
    createdAt: millis("createdAt").notNull().default(now),
    updatedAt: millis("updatedAt").notNull().default(now),
    payloadDigest: text("payload_digest"),
    payloadSize: integer("payload_size"),
  },
  (t) => [
    index("creator_idx").on(t.creatorId),
    index("category_idx").on(t.category),
    index("rc_status_idx").on(t.status),
    index("mx_chain_status_created_idx").on(t.status, t.createdAt, t.id),
  ],
);

export const apiKeys = sqliteTable(
  "mx_api_keys",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    userId: integer("user_id").notNull(),
    name: text("name").notNull(),
    keyHash: text("key_hash").notNull(),
    prefix: text("prefix").notNull(),
    scopes: text("scopes").notNull(),
    createdAt: millis("created_at").notNull().default(now),
    lastUsedAt: millis("last_used_at"),
    expiresAt: millis("expires_at"),
    revokedAt: millis("revoked_at"),
  },
  (t) => [uniqueIndex("mx_api_keys_hash_uq").on(t.keyHash), index("mx_api_keys_user_idx").on(t.userId)],
);

export const payloads = sqliteTable("mx_payloads", {
  digest: text("digest").primaryKey(),
  size: integer("size").notNull(),
  chunkCount: integer("chunk_count").notNull(),
  kind: text("kind").notNull(),
  tensors: text("tensors").notNull(),
  createdAt: millis("created_at").notNull().default(now),
  /** key of its rows in mx_payload_chunks when not the digest itself (a streamed upload's id) */
  chunkKey: text("chunk_key"),
});

export const payloadChunks = sqliteTable(
  "mx_payload_chunks",
  {
    digest: text("digest").notNull(),
    seq: integer("seq").notNull(),
    data: blob("data", { mode: "buffer" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.digest, t.seq] })],
);

export const payloadOwners = sqliteTable(
  "mx_payload_owners",
  {
    digest: text("digest").notNull(),
    userId: integer("user_id").notNull(),
    createdAt: millis("created_at").notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.digest, t.userId] })],
);

/** Streamed uploads in progress: their chunks sit under `id` until the digest is known. */
export const payloadUploads = sqliteTable(
  "mx_payload_uploads",
  {
    id: text("id").primaryKey(),
    userId: integer("user_id").notNull(),
    createdAt: millis("created_at").notNull().default(now),
  },
  (t) => [index("mx_payload_uploads_created_idx").on(t.createdAt)],
);

export const schemaMigrations = sqliteTable("mx_schema_migrations", {
  id: text("id").primaryKey(),
  appliedAt: millis("applied_at").notNull().default(now),
});
