import { and, eq, gte, isNull, lt, lte, not, or, sql, type AnyColumn, type SQL } from "drizzle-orm";
import type { ApiKeyRow, ChainFilter, Cursor, ExchangeRow, ListingFilter, NewChainUse, NewPurchase, TradeRole } from "./store.js";
import type { Scope } from "@memory-exchange/shared";

/**
 * Conditions shared by both dialects. Drizzle's operators are dialect-neutral,
 * so the rules of what a listing, a trade or a browse page is live here once.
 */
interface ExchangeColumns {
  id: AnyColumn;
  sellerId: AnyColumn;
  buyerId: AnyColumn;
  memoryType: AnyColumn;
  sourceModel: AnyColumn;
  priceCents: AnyColumn;
  status: AnyColumn;
  createdAt: AnyColumn;
  listingId: AnyColumn;
  chainId: AnyColumn;
}

interface ChainColumns {
  id: AnyColumn;
  category: AnyColumn;
  sourceModel: AnyColumn;
  pricePerUseCents: AnyColumn;
  status: AnyColumn;
  createdAt: AnyColumn;
}

/**
 * A listing is any row that is not a trade written by this service. The older
 * code's 'completed' rows were single-sale listings (so still listings), except
 * completed 'reasoning_chain' rows, which recorded chain uses.
 */
export const isListing = (t: ExchangeColumns): SQL =>
  and(
    isNull(t.listingId),
    isNull(t.chainId),
    not(and(eq(t.memoryType, "reasoning_chain"), eq(t.status, "completed"))!),
  )!;

/** A listing for sale: the older code's convention, status 'pending' and buyer_id 0. */
export const isAvailableListing = (t: ExchangeColumns): SQL =>
  and(eq(t.status, "pending"), eq(t.buyerId, 0), isNull(t.listingId), isNull(t.chainId))!;

export const isCompletedTrade = (t: ExchangeColumns): SQL => eq(t.status, "completed");

/** A completed chain use: new rows carry chain_id; the older code marked them by memory_type. */
export const isChainUse = (t: ExchangeColumns): SQL =>
  and(
    eq(t.status, "completed"),
    or(sql`${t.chainId} IS NOT NULL`, and(isNull(t.listingId), eq(t.memoryType, "reasoning_chain"))),
  )!;

const olderThan = (t: { createdAt: AnyColumn; id: AnyColumn }, after: Cursor): SQL =>
  or(lt(t.createdAt, after.createdAt), and(eq(t.createdAt, after.createdAt), lt(t.id, after.id)))!;

export function listingBrowseWhere(t: ExchangeColumns, f: ListingFilter): SQL {
  return and(
    isAvailableListing(t),
    f.memoryType ? eq(t.memoryType, f.memoryType) : undefined,
    f.sourceModel ? eq(t.sourceModel, f.sourceModel) : undefined,
    f.minPriceCents !== undefined ? gte(t.priceCents, f.minPriceCents) : undefined,
    f.maxPriceCents !== undefined ? lte(t.priceCents, f.maxPriceCents) : undefined,
    f.after ? olderThan(t, f.after) : undefined,
  )!;
}

export function chainBrowseWhere(t: ChainColumns, f: ChainFilter): SQL {
  return and(
    eq(t.status, "active"),
    f.category ? eq(t.category, f.category) : undefined,
    f.sourceModel ? eq(t.sourceModel, f.sourceModel) : undefined,
    f.minPriceCents !== undefined ? gte(t.pricePerUseCents, f.minPriceCents) : undefined,
    f.maxPriceCents !== undefined ? lte(t.pricePerUseCents, f.maxPriceCents) : undefined,
    f.after ? olderThan(t, f.after) : undefined,
  )!;
}

export function tradesWhere(t: ExchangeColumns, userId: number, role: TradeRole): SQL {
  const side =
    role === "buyer" ? eq(t.buyerId, userId) : role === "seller" ? eq(t.sellerId, userId) : or(eq(t.buyerId, userId), eq(t.sellerId, userId));
  return and(isCompletedTrade(t), side)!;
}

/** One pass over memory_exchanges for the stats; money and counts come back as driver values. */
export function exchangeStatsSelection(t: ExchangeColumns) {
  const countWhere = (condition: SQL) => sql`coalesce(sum(case when ${condition} then 1 else 0 end), 0)`;
  return {
    totalMemories: countWhere(isListing(t)),
    availableMemories: countWhere(isAvailableListing(t)),
    totalTransactions: countWhere(isCompletedTrade(t)),
    chainUses: countWhere(isChainUse(t)),
    totalVolume: sql`coalesce(sum(case when ${isCompletedTrade(t)} then ${t.priceCents} else 0 end), 0)`,
  };
}

export function chainStatsSelection(t: ChainColumns) {
  return {
    total: sql`count(*)`,
    active: sql`coalesce(sum(case when ${eq(t.status, "active")} then 1 else 0 end), 0)`,
  };
}

export function parseScopes(text: string): Scope[] {
  return text.split(",").filter(Boolean) as Scope[];
}

export function toApiKeyRow(row: Omit<ApiKeyRow, "scopes"> & { scopes: string }): ApiKeyRow {
  return { ...row, scopes: parseScopes(row.scopes) };
}

/** The older code sold a listing by completing the listing row itself: that row is then the buyer's purchase. */
export function legacySale(listing: ExchangeRow, buyerId: number): ExchangeRow | null {
  return listing.status === "completed" && listing.buyerId === buyerId ? listing : null;
}

/** The columns a store writes when it records a trade (a purchase or a chain use). */
export type TradeValues = Pick<
  ExchangeRow,
  "sellerId" | "buyerId" | "memoryType" | "sourceModel" | "targetModel" | "priceCents" | "listingId" | "chainId" | "payloadDigest" | "payloadSize" | "createdAt"
>;

/** The columns of the trade a purchase records, but its time (the store's to set). */
export function purchaseTrade({ listing, buyerId, targetModel }: NewPurchase): Omit<TradeValues, "createdAt"> {
  return {
    sellerId: listing.sellerId,
    buyerId,
    memoryType: listing.memoryType,
    sourceModel: listing.sourceModel,
    targetModel,
    priceCents: listing.priceCents,
    listingId: listing.id,
    chainId: null,
    payloadDigest: listing.payloadDigest,
    payloadSize: listing.payloadSize,
  };
}

/** The columns of the trade a chain use records, but its time. */
export function chainUseTrade({ chain, userId, priceCents, targetModel }: NewChainUse): Omit<TradeValues, "createdAt"> {
  return {
    sellerId: chain.creatorId,
    buyerId: userId,
    memoryType: "reasoning_chain",
    sourceModel: chain.sourceModel,
    targetModel,
    priceCents,
    listingId: null,
    chainId: chain.id,
    payloadDigest: chain.payloadDigest,
    payloadSize: chain.payloadSize,
  };
}

/**
 * The row a trade INSERT wrote, without reading it back: every column it
 * does not set is NULL by the schema (the older code's table included), and
 * its time is set by the store, not by the database.
 */
export function insertedTrade(id: number, values: TradeValues): ExchangeRow {
  return { id, ...values, status: "completed", kvCacheData: null, contextLength: null, tokenCount: null, qualityScore: null, description: null };
}

/** The columns every store selects for a row type (ExchangeRow, ChainRow, ApiKeyRow), named once for both dialects. */
export const EXCHANGE_COLUMNS = [
  "id",
  "sellerId",
  "buyerId",
  "memoryType",
  "kvCacheData",
  "sourceModel",
  "targetModel",
  "contextLength",
  "tokenCount",
  "priceCents",
  "qualityScore",
  "status",
  "createdAt",
  "description",
  "listingId",
  "chainId",
  "payloadDigest",
  "payloadSize",
] as const;
/** A page of listings or trades: every exchange column but the older code's inline payload (large TEXT, read only by whoever gets the payload). */
export const EXCHANGE_SUMMARY_COLUMNS = EXCHANGE_COLUMNS.filter((c): c is Exclude<(typeof EXCHANGE_COLUMNS)[number], "kvCacheData"> => c !== "kvCacheData");
export const CHAIN_COLUMNS = [
  "id",
  "creatorId",
  "chainName",
  "description",
  "category",
  "inputExample",
  "outputExample",
  "kvCacheSnapshot",
  "sourceModel",
  "stepCount",
  "avgQuality",
  "reviewCount",
  "pricePerUseCents",
  "usageCount",
  "totalRevenueCents",
  "status",
  "createdAt",
  "payloadDigest",
  "payloadSize",
] as const;
/** A page of chains: every chain column but the inline snapshot. */
export const CHAIN_SUMMARY_COLUMNS = CHAIN_COLUMNS.filter((c): c is Exclude<(typeof CHAIN_COLUMNS)[number], "kvCacheSnapshot"> => c !== "kvCacheSnapshot");
export const API_KEY_COLUMNS = [
  "id",
  "userId",
  "name",
  "keyHash",
  "prefix",
  "scopes",
  "createdAt",
  "lastUsedAt",
  "expiresAt",
  "revokedAt",
] as const;

/** `{ key: table.key }` for the given keys: a Drizzle selection of those columns. */
export function pickColumns<T extends object, K extends keyof T>(table: T, keys: readonly K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((key) => [key, table[key]])) as Pick<T, K>;
}
