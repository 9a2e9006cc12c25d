import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import { isMigrated } from "../db/migrate.js";
import type { SqliteDatabase } from "../db/open-database.js";
import { apiKeys, memoryExchanges as ex, reasoningChains as rc } from "../db/sqlite-schema.js";
import { createSqlitePayloadStore } from "./sqlite-payload-store.js";
import {
  chainBrowseWhere,
  chainStatsSelection,
  exchangeStatsSelection,
  isListing,
  listingBrowseWhere,
  toApiKeyRow,
  tradesWhere,
} from "./queries.js";
import { ChainUnavailableError, type ChainRow, type ExchangeRow, type Store } from "./store.js";

const exchangeColumns = {
  id: ex.id,
  sellerId: ex.sellerId,
  buyerId: ex.buyerId,
  memoryType: ex.memoryType,
  kvCacheData: ex.kvCacheData,
  sourceModel: ex.sourceModel,
  targetModel: ex.targetModel,
  contextLength: ex.contextLength,
  tokenCount: ex.tokenCount,
  priceCents: ex.priceCents,
  qualityScore: ex.qualityScore,
  status: ex.status,
  createdAt: ex.createdAt,
  description: ex.description,
  listingId: ex.listingId,
  chainId: ex.chainId,
  payloadDigest: ex.payloadDigest,
  payloadSize: ex.payloadSize,
};

const chainColumns = {
  id: rc.id,
  creatorId: rc.creatorId,
  chainName: rc.chainName,
  description: rc.description,
  category: rc.category,
  inputExample: rc.inputExample,
  outputExample: rc.outputExample,
  kvCacheSnapshot: rc.kvCacheSnapshot,
  sourceModel: rc.sourceModel,
  stepCount: rc.stepCount,
  avgQuality: rc.avgQuality,
  reviewCount: rc.reviewCount,
  pricePerUseCents: rc.pricePerUseCents,
  usageCount: rc.usageCount,
  totalRevenueCents: rc.totalRevenueCents,
  status: rc.status,
  createdAt: rc.createdAt,
  payloadDigest: rc.payloadDigest,
  payloadSize: rc.payloadSize,
};

const apiKeyColumns = {
  id: apiKeys.id,
  userId: apiKeys.userId,
  name: apiKeys.name,
  keyHash: apiKeys.keyHash,
  prefix: apiKeys.prefix,
  scopes: apiKeys.scopes,
  createdAt: apiKeys.createdAt,
  lastUsedAt: apiKeys.lastUsedAt,
  expiresAt: apiKeys.expiresAt,
  revokedAt: apiKeys.revokedAt,
};

/**
 * better-sqlite3 is synchronous: every method runs to completion on the
 * event loop, so a transaction cannot interleave with another request.
 */
export function createSqliteStore(database: SqliteDatabase): Store {
  const { db } = database;

  const findExchange = (id: number): ExchangeRow | null =>
    db.select(exchangeColumns).from(ex).where(eq(ex.id, id)).get() ?? null;
  const findChain = (id: number): ChainRow | null => db.select(chainColumns).from(rc).where(eq(rc.id, id)).get() ?? null;
  const findPurchase = (listingId: number, buyerId: number): ExchangeRow | null =>
    db
      .select(exchangeColumns)
      .from(ex)
      .where(and(eq(ex.listingId, listingId), eq(ex.buyerId, buyerId), eq(ex.status, "completed")))
      .get() ??
    // The older code sold a listing by completing the listing row itself.
    db
      .select(exchangeColumns)
      .from(ex)
      .where(and(eq(ex.id, listingId), eq(ex.buyerId, buyerId), eq(ex.status, "completed"), isListing(ex)))
      .get() ??
    null;
  const findApiKey = (id: number) => {
    const row = db.select(apiKeyColumns).from(apiKeys).where(eq(apiKeys.id, id)).get();
    return row ? toApiKeyRow(row) : null;
  };

  return {
    dialect: "sqlite",

    async insertListing(listing) {
      const result = db
        .insert(ex)
        .values({
          sellerId: listing.sellerId,
          buyerId: 0,
          memoryType: listing.memoryType,
          sourceModel: listing.sourceModel,
          priceCents: listing.priceCents,
          description: listing.description,
          tokenCount: listing.tokenCount,
          contextLength: listing.contextLength,
          payloadDigest: listing.payloadDigest,
          payloadSize: listing.payloadSize,
          status: "pending",
        })
        .run();
      return Number(result.lastInsertRowid);
    },

    async findListing(id) {
      return db.select(exchangeColumns).from(ex).where(and(eq(ex.id, id), isListing(ex))).get() ?? null;
    },

    async browseListings(filter) {
      return db
        .select(exchangeColumns)
        .from(ex)
        .where(listingBrowseWhere(ex, filter))
        .orderBy(desc(ex.createdAt), desc(ex.id))
        .limit(filter.limit)
        .offset(filter.offset)
        .all();
    },

    findPurchase: async (listingId, buyerId) => findPurchase(listingId, buyerId),

    async recordPurchase({ listing, buyerId, targetModel }) {
      // The unique index (listing_id, buyer_id) decides: a duplicate inserts nothing.
      const result = db
        .insert(ex)
        .values({
          sellerId: listing.sellerId,
          buyerId,
          memoryType: listing.memoryType,
          sourceModel: listing.sourceModel,
          targetModel,
          priceCents: listing.priceCents,
          status: "completed",
          listingId: listing.id,
          payloadDigest: listing.payloadDigest,
          payloadSize: listing.payloadSize,
        })
        .onConflictDoNothing()
        .run();
      if (result.changes === 1) return { trade: findExchange(Number(result.lastInsertRowid))!, created: true };
      const existing = findPurchase(listing.id, buyerId);
      if (!existing) throw new Error("purchase conflict without an existing purchase");
      return { trade: existing, created: false };
    },

    async insertChain(chain) {
      const result = db
        .insert(rc)
        .values({
          creatorId: chain.creatorId,
          chainName: chain.chainName,
          description: chain.description,
          category: chain.category,
          sourceModel: chain.sourceModel,
          pricePerUseCents: chain.pricePerUseCents,
          stepCount: chain.stepCount,
          inputExample: chain.inputExample,
          outputExample: chain.outputExample,
          payloadDigest: chain.payloadDigest,
          payloadSize: chain.payloadSize,
          status: "active",
        })
        .run();
      return Number(result.lastInsertRowid);
    },

    findChain: async (id) => findChain(id),

    async browseChains(filter) {
      return db
        .select(chainColumns)
        .from(rc)
        .where(chainBrowseWhere(rc, filter))
        .orderBy(desc(rc.createdAt), desc(rc.id))
        .limit(filter.limit)
        .offset(filter.offset)
        .all();
    },

    async recordChainUse({ chain, userId, priceCents, targetModel }) {
      return db.transaction(
        (tx) => {
          const update = tx
            .update(rc)
            .set({
              usageCount: sql`${rc.usageCount} + 1`,
              totalRevenueCents: sql`${rc.totalRevenueCents} + ${priceCents}`,
            })
            .where(and(eq(rc.id, chain.id), eq(rc.status, "active")))
            .run();
          if (update.changes !== 1) throw new ChainUnavailableError(chain.id);
          const insert = tx
            .insert(ex)
            .values({
              sellerId: chain.creatorId,
              buyerId: userId,
              memoryType: "reasoning_chain",
              sourceModel: chain.sourceModel,
              targetModel,
              priceCents,
              status: "completed",
              chainId: chain.id,
              payloadDigest: chain.payloadDigest,
              payloadSize: chain.payloadSize,
            })
            .run();
          const trade = tx.select(exchangeColumns).from(ex).where(eq(ex.id, Number(insert.lastInsertRowid))).get()!;
          const updated = tx.select(chainColumns).from(rc).where(eq(rc.id, chain.id)).get()!;
          return { trade, chain: updated };
        },
        { behavior: "immediate" },
      );
    },

    async listTrades(userId, role, limit, offset) {
      return db
        .select(exchangeColumns)
        .from(ex)
        .where(tradesWhere(ex, userId, role))
        .orderBy(desc(ex.createdAt), desc(ex.id))
        .limit(limit)
        .offset(offset)
        .all();
    },

    async findTrade(id) {
      const row = findExchange(id);
      return row && row.status === "completed" ? row : null;
    },

    async stats() {
      const exchange = db.select(exchangeStatsSelection(ex)).from(ex).get()!;
      const chains = db.select(chainStatsSelection(rc)).from(rc).get()!;
      return {
        totalMemories: Number(exchange.totalMemories),
        availableMemories: Number(exchange.availableMemories),
        totalTransactions: Number(exchange.totalTransactions),
        chainUses: Number(exchange.chainUses),
        totalVolumeCents: Number(exchange.totalVolume),
        totalReasoningChains: Number(chains.total),
        activeReasoningChains: Number(chains.active),
      };
    },

    async insertApiKey(key) {
      const result = db
        .insert(apiKeys)
        .values({
          userId: key.userId,
          name: key.name,
          keyHash: key.keyHash,
          prefix: key.prefix,
          scopes: key.scopes.join(","),
          expiresAt: key.expiresAt,
        })
        .run();
      return findApiKey(Number(result.lastInsertRowid))!;
    },

    async findApiKeyByHash(keyHash) {
      const row = db.select(apiKeyColumns).from(apiKeys).where(eq(apiKeys.keyHash, keyHash)).get();
      return row ? toApiKeyRow(row) : null;
    },

    findApiKey: async (id) => findApiKey(id),

    async listApiKeys(userId) {
      return db
        .select(apiKeyColumns)
        .from(apiKeys)
        .where(userId === undefined ? undefined : eq(apiKeys.userId, userId))
        .orderBy(asc(apiKeys.id))
        .all()
        .map(toApiKeyRow);
    },

    async revokeApiKey(id, at) {
      const result = db
        .update(apiKeys)
        .set({ revokedAt: at })
        .where(and(eq(apiKeys.id, id), sql`${apiKeys.revokedAt} IS NULL`))
        .run();
      return result.changes === 1;
    },

    async touchApiKeys(ids, at) {
      if (ids.length === 0) return;
      db.update(apiKeys).set({ lastUsedAt: at }).where(inArray(apiKeys.id, ids)).run();
    },

    payloads: createSqlitePayloadStore(database),

    async ping() {
      db.get(sql`SELECT 1`);
    },
    isMigrated: () => isMigrated(database),
    close: () => database.close(),
  };
}
