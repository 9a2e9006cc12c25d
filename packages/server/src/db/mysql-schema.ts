import { centsToDecimalString, decimalStringToCents } from "@memory-exchange/shared";
import {
  bigint,
  char,
  customType,
  index,
  int,
  mysqlEnum,
  mysqlTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  varchar,
} from "drizzle-orm/mysql-core";

/** DECIMAL(p,2) column as integer hundredths in code (money in cents): exact both ways. */
const hundredths = (name: string, precision: number) =>
  customType<{ data: number; driverData: string }>({
    dataType: () => `decimal(${precision}, 2)`,
    toDriver: (cents) => centsToDecimalString(cents),
    fromDriver: (value) => decimalStringToCents(String(value)),
  })(name);

const blob = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "mediumblob" });

// ---- legacy tables (names and columns kept; the mx_ columns are additive) ----

export const memoryExchanges = mysqlTable(
  "memory_exchanges",
  {
    id: int("id").autoincrement().primaryKey(),
    sellerId: int("seller_id").notNull(),
    buyerId: int("buyer_id").notNull(),
    memoryType: mysqlEnum("memory_type", ["kv_cache", "reasoning_chain", "long_term_memory"]).notNull(),
    kvCacheData: text("kv_cache_data"),
    wMatrixVersion: varchar("w_matrix_version", { length: 20 }),
    sourceModel: varchar("source_model", { length: 50 }),
    targetModel: varchar("target_model", { length: 50 }),
    contextLength: int("context_length"),
    tokenCount: int("token_count"),
    priceCents: hundredths("price", 10).notNull(),
    qualityScore: hundredths("quality_score", 3),
    alignmentQuality: text("alignment_quality"),
    status: mysqlEnum("status", ["pending", "completed", "failed"]).notNull().default("pending"),
    createdAt: timestamp("createdAt", { mode: "date" }).notNull().defaultNow(),
    // added by this service
    description: text("description"),
    listingId: int("listing_id"),
    chainId: int("chain_id"),
    payloadDigest: char("payload_digest", { length: 64 }),
    payloadSize: bigint("payload_size", { mode: "number" }),
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

export const reasoningChains = mysqlTable(
  "reasoning_chains",
  {
    id: int("id").autoincrement().primaryKey(),
    creatorId: int("creator_id").notNull(),
    chainName: varchar("chain_name", { length: 255 }).notNull(),
    description: text("description").notNull(),
    category: varchar("category", { length: 100 }).notNull(),
    inputExample: text("input_example"),
    outputExample: text("output_example"),
    kvCacheSnapshot: text("kv_cache_snapshot"),
    sourceModel: varchar("source_model", { length: 50 }).notNull(),
    wMatrixVersion: varchar("w_matrix_version", { length: 20 }),
    stepCount: int("step_count"),
    avgQuality: hundredths("avg_quality", 3).default(0),
    reviewCount: int("review_count").notNull().default(0),
    pricePerUseCents: hundredths("price_per_use", 10).notNull(),
    usageCount: int("usage_count").notNull().default(0),
    totalRevenueCents: hundredths("total_revenue", 12).notNull().default(0),
    status: mysqlEnum("status", ["draft", "active", "inactive"]).notNull().default("draft"),
    createdAt: timestamp("createdAt", { mode: "date" }).notNull().defaultNow(),
    updatedAt: timestamp("updatedAt", { mode: "date" }).notNull().defaultNow().onUpdateNow(),
    // added by this service
    payloadDigest: char("payload_digest", { length: 64 }),
    payloadSize: bigint("payload_size", { mode: "number" }),
  },
  (t) => [
    index("creator_idx").on(t.creatorId),
    index("category_idx").on(t.category),
    index("status_idx").on(t.status),
    index("mx_chain_status_created_idx").on(t.status, t.createdAt, t.id),
  ],
);

// ---- tables this service adds ----

export const apiKeys = mysqlTable(
  "mx_api_keys",
  {
    id: int("id").autoincrement().primaryKey(),
    userId: int("user_id").notNull(),
    name: varchar("name", { length: 100 }).notNull(),
    keyHash: char("key_hash", { length: 64 }).notNull(),
    prefix: varchar("prefix", { length: 16 }).notNull(),
    scopes: varchar("scopes", { length: 100 }).notNull(),
    createdAt: timestamp("created_at", { mode: "date" }).notNull().defaultNow(),
    lastUsedAt: timestamp("last_used_at", { mode: "date" }),
    expiresAt: timestamp("expires_at", { mode: "date" }),
    revokedAt: timestamp("revoked_at", { mode: "date" }),
  },
  (t) => [uniqueIndex("mx_api_keys_hash_uq").on(t.keyHash), index("mx_api_keys_user_idx").on(t.userId)],
);

export const payloads = mysqlTable("mx_payloads", {
  digest: char("digest", { length: 64 }).primaryKey(),
  size: bigint("size", { mode: "number" }).notNull(),
  chunkCount: int("chunk_count").notNull(),
  kind: varchar("kind", { length: 20 }).notNull(),
  /** JSON: tensor names → {dtype, shape}, for listings without reading chunks */
  tensors: text("tensors").notNull(),
  createdAt: timestamp("created_at", { mode: "date" }).notNull().defaultNow(),
  /** key of its rows in mx_payload_chunks when not the digest itself (a streamed upload's id) */
  chunkKey: varchar("chunk_key", { length: 64 }),
});

export const payloadChunks = mysqlTable(
  "mx_payload_chunks",
  {
    digest: char("digest", { length: 64 }).notNull(),
    seq: int("seq").notNull(),
    data: blob("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.digest, t.seq] })],
);

export const payloadOwners = mysqlTable(
  "mx_payload_owners",
  {
    digest: char("digest", { length: 64 }).notNull(),
    userId: int("user_id").notNull(),
    createdAt: timestamp("created_at", { mode: "date" }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.digest, t.userId] })],
);

/** Streamed uploads in progress: their chunks sit under `id` until the digest is known. */
export const payloadUploads = mysqlTable(
  "mx_payload_uploads",
  {
    id: varchar("id", { length: 64 }).primaryKey(),
    userId: int("user_id").notNull(),
    createdAt: timestamp("created_at", { mode: "date" }).notNull().defaultNow(),
  },
  (t) => [index("mx_payload_uploads_created_idx").on(t.createdAt)],
);

export const schemaMigrations = mysqlTable("mx_schema_migrations", {
  id: varchar("id", { length: 100 }).primaryKey(),
  appliedAt: timestamp("applied_at", { mode: "date" }).notNull().defaultNow(),
});
