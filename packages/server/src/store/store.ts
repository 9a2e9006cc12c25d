import type { MemoryType, Scope } from "@memory-exchange/shared";
import type { NewPayload, PayloadStore } from "./payload-store.js";

export { PAYLOAD_CHUNK_BYTES, type NewPayload, type PayloadInfo, type PayloadStore } from "./payload-store.js";

/**
 * The storage contract. Two implementations (MySQL family, SQLite) satisfy
 * it and one contract test suite runs against both. Types here are plain
 * data: no Drizzle or driver types leak to callers. Money is integer cents.
 */

/** A row of `memory_exchanges`: a listing, a trade, or a legacy row that was both. */
export interface ExchangeRow {
  id: number;
  sellerId: number;
  buyerId: number;
  memoryType: MemoryType;
  /** inline JSON payload written by the older code; null for rows whose payload is in the payload store */
  kvCacheData: string | null;
  sourceModel: string | null;
  targetModel: string | null;
  contextLength: number | null;
  tokenCount: number | null;
  priceCents: number;
  /** DECIMAL(3,2) as hundredths */
  qualityScore: number | null;
  status: "pending" | "completed" | "failed";
  createdAt: Date;
  description: string | null;
  listingId: number | null;
  chainId: number | null;
  payloadDigest: string | null;
  payloadSize: number | null;
}

/** An exchange row as pages carry it: without the older code's inline payload. */
export type ExchangeSummary = Omit<ExchangeRow, "kvCacheData">;

export interface ChainRow {
  id: number;
  creatorId: number;
  chainName: string;
  description: string;
  category: string;
  inputExample: string | null;
  outputExample: string | null;
  kvCacheSnapshot: string | null;
  sourceModel: string;
  stepCount: number | null;
  /** DECIMAL(3,2) as hundredths */
  avgQuality: number | null;
  reviewCount: number;
  pricePerUseCents: number;
  usageCount: number;
  totalRevenueCents: number;
  status: "draft" | "active" | "inactive";
  createdAt: Date;
  payloadDigest: string | null;
  payloadSize: number | null;
}

/** A chain row as pages carry it: without the inline snapshot. */
export type ChainSummary = Omit<ChainRow, "kvCacheSnapshot">;

export interface NewListing {
  sellerId: number;
  memoryType: MemoryType;
  sourceModel: string;
  priceCents: number;
  description: string | null;
  tokenCount: number | null;
  contextLength: number | null;
  payloadDigest: string;
  payloadSize: number;
}

export interface NewPurchase {
  listing: ExchangeRow;
  buyerId: number;
  targetModel: string;
}

export interface NewChain {
  creatorId: number;
  chainName: string;
  description: string;
  category: string;
  sourceModel: string;
  pricePerUseCents: number;
  stepCount: number | null;
  inputExample: string | null;
  outputExample: string | null;
  payloadDigest: string;
  payloadSize: number;
}

export interface NewChainUse {
  chain: ChainRow;
  userId: number;
  priceCents: number;
  targetModel: string;
}

/** Keyset position: rows strictly older than (createdAt, id) in newest-first order. */
export interface Cursor {
  createdAt: Date;
  id: number;
}

export interface ListingFilter {
  memoryType?: MemoryType;
  sourceModel?: string;
  minPriceCents?: number;
  maxPriceCents?: number;
  limit: number;
  offset: number;
  after?: Cursor;
}

export interface ChainFilter {
  category?: string;
  sourceModel?: string;
  minPriceCents?: number;
  maxPriceCents?: number;
  limit: number;
  offset: number;
  after?: Cursor;
}

export type TradeRole = "buyer" | "seller" | "both";

export interface StatsRow {
  totalMemories: number;
  availableMemories: number;
  totalTransactions: number;
  chainUses: number;
  totalVolumeCents: number;
  totalReasoningChains: number;
  activeReasoningChains: number;
}

export interface ApiKeyRow {
  id: number;
  userId: number;
  name: string;
  keyHash: string;
  prefix: string;
  scopes: Scope[];
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

export interface NewApiKey {
  userId: number;
  name: string;
  keyHash: string;
  prefix: string;
  scopes: Scope[];
  expiresAt: Date | null;
}

export interface Store {
  readonly dialect: "mysql" | "sqlite";

  /**
   * Stores a listing; with `payload` (the KV cache a publish carries inline), stores the payload and the
   * listing in one transaction: one commit instead of several, and never one without the other.
   */
  insertListing(listing: NewListing, payload?: NewPayload): Promise<number>;
  /** A listing row (one that is not a new-style trade), or null. */
  findListing(id: number): Promise<ExchangeRow | null>;
  /** Listings for sale, newest first. */
  browseListings(filter: ListingFilter): Promise<ExchangeSummary[]>;
  /**
   * The buyer's completed purchase of a listing (as `findListing` returned it), or null: a trade naming
   * the listing, or, the older code's form, the listing row itself, completed for this buyer.
   */
  findPurchase(listing: ExchangeRow, buyerId: number): Promise<ExchangeRow | null>;
  /** Records a purchase; a second purchase by the same buyer returns the first (the unique index decides races). */
  recordPurchase(purchase: NewPurchase): Promise<{ trade: ExchangeRow; created: boolean }>;

  /** Stores a chain; with `payload`, in one transaction with it (as `insertListing`). */
  insertChain(chain: NewChain, payload?: NewPayload): Promise<number>;
  findChain(id: number): Promise<ChainRow | null>;
  /** Active chains, newest first. */
  browseChains(filter: ChainFilter): Promise<ChainSummary[]>;
  /** Records one paid use and bumps the chain's counters in one transaction; returns the trade and the chain given, with its counters after this use. */
  recordChainUse(use: NewChainUse): Promise<{ trade: ExchangeRow; chain: ChainRow }>;

  /** Completed trades where the user is buyer and/or seller, newest first. */
  listTrades(userId: number, role: TradeRole, limit: number, offset: number): Promise<ExchangeSummary[]>;
  findTrade(id: number): Promise<ExchangeRow | null>;
  stats(): Promise<StatsRow>;

  insertApiKey(key: NewApiKey): Promise<ApiKeyRow>;
  findApiKeyByHash(keyHash: string): Promise<ApiKeyRow | null>;
  findApiKey(id: number): Promise<ApiKeyRow | null>;
  listApiKeys(userId?: number): Promise<ApiKeyRow[]>;
  revokeApiKey(id: number, at: Date): Promise<boolean>;
  touchApiKeys(ids: number[], at: Date): Promise<void>;

  /** The content-addressed payload store (chunked KV caches and uploads). */
  readonly payloads: PayloadStore;

  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  isMigrated(): Promise<boolean>;
  close(): Promise<void>;
}

/** The chain stopped being active between the read and the use. */
export class ChainUnavailableError extends Error {
  constructor(readonly chainId: number) {
    super(`reasoning chain ${chainId} is not available`);
  }
}
