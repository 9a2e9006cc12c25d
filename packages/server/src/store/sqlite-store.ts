import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import { isMigrated } from "../db/migrate.js";
import type { SqliteDatabase } from "../db/open-database.js";
import { apiKeys, memoryExchanges as ex, reasoningChains as rc } from "../db/sqlite-schema.js";
import { compileRowDecoder, filterShape, lazy, placeholderFilter, sqliteLimit, StatementCache } from "./prepared.js";
import { createSqlitePayloadStore } from "./sqlite-payload-store.js";
import {
  chainBrowseWhere,
  chainStatsSelection,
  exchangeStatsSelection,
  isListing,
  listingBrowseWhere,
  toApiKeyRow,
  tradesWhere,
  API_KEY_COLUMNS,
  CHAIN_COLUMNS,
  CHAIN_SUMMARY_COLUMNS,
  EXCHANGE_COLUMNS,
  EXCHANGE_SUMMARY_COLUMNS,
  chainUseTrade,
  legacySale,
  pickColumns,
  purchaseTrade,
} from "./queries.js";
import type { NewPayload } from "./payload-store.js";
import { ChainUnavailableError, type ChainFilter, type ChainRow, type ExchangeRow, type ListingFilter, type NewChain, type NewChainUse, type Store } from "./store.js";

const exchangeColumns = pickColumns(ex, EXCHANGE_COLUMNS);

const chainColumns = pickColumns(rc, CHAIN_COLUMNS);
const exchangeSummaryColumns = pickColumns(ex, EXCHANGE_SUMMARY_COLUMNS);
const chainSummaryColumns = pickColumns(rc, CHAIN_SUMMARY_COLUMNS);

// Browse pages decode their rows with mappers compiled from the same selections (prepared.ts).
const exchangeSummary = compileRowDecoder(exchangeSummaryColumns);
const chainSummary = compileRowDecoder(chainSummaryColumns);

const apiKeyColumns = pickColumns(apiKeys, API_KEY_COLUMNS);

/**
 * better-sqlite3 is synchronous: every method runs to completion on the
 * event loop, so a transaction cannot interleave with another request.
 */
export function createSqliteStore(database: SqliteDatabase): Store {
  const { db } = database;
  const ph = sql.placeholder;

  // The hot statements, prepared once (prepared.ts).
  const exchangeById = lazy(() => db.select(exchangeColumns).from(ex).where(eq(ex.id, ph("id"))).prepare());
  const chainById = lazy(() => db.select(chainColumns).from(rc).where(eq(rc.id, ph("id"))).prepare());
  const listingById = lazy(() => db.select(exchangeColumns).from(ex).where(and(eq(ex.id, ph("id")), isListing(ex))).prepare());
  const purchaseOf = lazy(() =>
    db
      .select(exchangeColumns)
      .from(ex)
      .where(and(eq(ex.listingId, ph("listingId")), eq(ex.buyerId, ph("buyerId")), eq(ex.status, "completed")))
      .prepare(),
  );
  const insertListing = lazy(() =>
    db
      .insert(ex)
      .values({
        sellerId: ph("sellerId"),
        buyerId: 0,
        memoryType: ph("memoryType"),
        sourceModel: ph("sourceModel"),
        priceCents: ph("priceCents"),
        description: ph("description"),
        tokenCount: ph("tokenCount"),
        contextLength: ph("contextLength"),
        payloadDigest: ph("payloadDigest"),
        payloadSize: ph("payloadSize"),
        status: "pending",
      })
      .prepare(),
  );
  const insertPurchase = lazy(() =>
    db
      .insert(ex)
      .values({
        sellerId: ph("sellerId"),
        buyerId: ph("buyerId"),
        memoryType: ph("memoryType"),
        sourceModel: ph("sourceModel"),
        targetModel: ph("targetModel"),
        priceCents: ph("priceCents"),
        status: "completed",
        listingId: ph("listingId"),
        payloadDigest: ph("payloadDigest"),
        payloadSize: ph("payloadSize"),
      })
      .onConflictDoNothing()
      .prepare(),
  );
  const countChainUse = lazy(() =>
    db
      .update(rc)
      .set({ usageCount: sql`${rc.usageCount} + 1`, totalRevenueCents: sql`${rc.totalRevenueCents} + ${ph("priceCents")}` })
      .where(and(eq(rc.id, ph("chainId")), eq(rc.status, "active")))
      .prepare(),
  );
  const chainCounters = lazy(() =>
    db.select({ usageCount: rc.usageCount, totalRevenueCents: rc.totalRevenueCents }).from(rc).where(eq(rc.id, ph("id"))).prepare(),
  );
  const insertChainUse = lazy(() =>
    db
      .insert(ex)
      .values({
        sellerId: ph("sellerId"),
        buyerId: ph("buyerId"),
        memoryType: "reasoning_chain",
        sourceModel: ph("sourceModel"),
        targetModel: ph("targetModel"),
        priceCents: ph("priceCents"),
        status: "completed",
        chainId: ph("chainId"),
        payloadDigest: ph("payloadDigest"),
        payloadSize: ph("payloadSize"),
      })
      .prepare(),
  );
  // One statement per filter combination and page size (the LIMIT is part of the SQL: sqliteLimit).
  const pageKey = (filter: ListingFilter | ChainFilter) => `${filterShape(filter)}limit=${filter.limit}`;
  const listingPages = new StatementCache<ReturnType<typeof prepareListingPage>>();
  const prepareListingPage = (filter: ListingFilter) =>
    db
      .select(exchangeSummaryColumns)
      .from(ex)
      .where(listingBrowseWhere(ex, placeholderFilter(filter)))
      .orderBy(desc(ex.createdAt), desc(ex.id))
      .limit(sqliteLimit(filter.limit))
      .offset(ph("offset"))
      .prepare();
  const chainPages = new StatementCache<ReturnType<typeof prepareChainPage>>();
  const prepareChainPage = (filter: ChainFilter) =>
    db
      .select(chainSummaryColumns)
      .from(rc)
      .where(chainBrowseWhere(rc, placeholderFilter(filter)))
      .orderBy(desc(rc.createdAt), desc(rc.id))
      .limit(sqliteLimit(filter.limit))
      .offset(ph("offset"))
      .prepare();
  /** A page's placeholder values, dates in driver form. */
  const pageValues = (filter: ListingFilter | ChainFilter) => ({
    ...filter,
    afterCreatedAt: filter.after ? ex.createdAt.mapToDriverValue(filter.after.createdAt) : undefined,
    afterId: filter.after?.id,
  });

  const insertChainNow = (chain: NewChain) => Number(db.insert(rc).values({ ...chain, status: "active" }).run().lastInsertRowid);
  const payloads = createSqlitePayloadStore(database);
  // One immediate transaction (made once, as the payload store's) for a publish that carries its payload.
  const insertWithPayload = database.sqlite.transaction((payload: NewPayload, insert: () => number) => {
    payloads.putRows(payload);
    return insert();
  });
  const withPayload = (payload: NewPayload | undefined, insert: () => number): number =>
    payload ? insertWithPayload.immediate(payload, insert) : insert();

  const findExchange = (id: number): ExchangeRow | null => exchangeById().get({ id }) ?? null;
  const findChain = (id: number): ChainRow | null => chainById().get({ id }) ?? null;
  const findPurchase = (listing: ExchangeRow, buyerId: number): ExchangeRow | null =>
    purchaseOf().get({ listingId: listing.id, buyerId }) ?? legacySale(listing, buyerId);
  const findApiKey = (id: number) => {
    const row = db.select(apiKeyColumns).from(apiKeys).where(eq(apiKeys.id, id)).get();
    return row ? toApiKeyRow(row) : null;
  };

  // One chain use: better-sqlite3's own transaction function, made once (Drizzle's `transaction` builds one per call).
  const chainUse = database.sqlite.transaction((use: NewChainUse) => {
    const { chain, priceCents } = use;
    // Prepared statements run on the same connection, so they take part in the transaction.
    const update = countChainUse().run({ chainId: chain.id, priceCents });
    if (update.changes !== 1) throw new ChainUnavailableError(chain.id);
    const insert = insertChainUse().run(chainUseTrade(use));
    const trade = findExchange(Number(insert.lastInsertRowid))!;
    // The counters this use moved; the rest is the row the use began with.
    const counters = chainCounters().get({ id: chain.id })!;
    return { trade, chain: { ...chain, ...counters } };
  });

  return {
    dialect: "sqlite",

    async insertListing(listing, payload) {
      return withPayload(payload, () => Number(insertListing().run({ ...listing }).lastInsertRowid));
    },

    async findListing(id) {
      return listingById().get({ id }) ?? null;
    },

    async browseListings(filter) {
      return listingPages.get(pageKey(filter), () => prepareListingPage(filter)).values(pageValues(filter)).map(exchangeSummary);
    },

    findPurchase: async (listing, buyerId) => findPurchase(listing, buyerId),

    async recordPurchase(purchase) {
      const { listing, buyerId } = purchase;
      // The unique index (listing_id, buyer_id) decides: a duplicate inserts nothing.
      const result = insertPurchase().run(purchaseTrade(purchase));
      if (result.changes === 1) return { trade: findExchange(Number(result.lastInsertRowid))!, created: true };
      const existing = findPurchase(listing, buyerId);
      if (!existing) throw new Error("purchase conflict without an existing purchase");
      return { trade: existing, created: false };
    },

    async insertChain(chain, payload) {
      return withPayload(payload, () => insertChainNow(chain));
    },

    findChain: async (id) => findChain(id),

    async browseChains(filter) {
      return chainPages.get(pageKey(filter), () => prepareChainPage(filter)).values(pageValues(filter)).map(chainSummary);
    },

    async recordChainUse(use) {
      return chainUse.immediate(use);
    },

    async listTrades(userId, role, limit, offset) {
      return db
        .select(exchangeSummaryColumns)
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

    payloads,

    async ping() {
      db.get(sql`SELECT 1`);
    },
    isMigrated: () => isMigrated(database),
    close: () => database.close(),
  };
}
