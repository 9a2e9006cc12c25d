import { centsToDecimalString, decimalStringToCents } from "@memory-exchange/shared";
import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import type { ResultSetHeader } from "mysql2";
import { isMigrated } from "../db/migrate.js";
import { apiKeys, memoryExchanges as ex, reasoningChains as rc } from "../db/mysql-schema.js";
import type { MysqlDatabase } from "../db/open-database.js";
import { createMysqlPayloadStore } from "./mysql-payload-store.js";
import { inMysqlTransaction, isDuplicateKey, runSql } from "./mysql-transaction.js";
import { filterShape, lazy, mysqlSelectRows, placeholderFilter, StatementCache } from "./prepared.js";
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
  insertedTrade,
  legacySale,
  purchaseTrade,
  pickColumns,
  type TradeValues,
} from "./queries.js";
import type { NewPayload } from "./payload-store.js";
import { ChainUnavailableError, type ChainFilter, type ChainRow, type ListingFilter, type Store } from "./store.js";

const exchangeColumns = pickColumns(ex, EXCHANGE_COLUMNS);

const chainColumns = pickColumns(rc, CHAIN_COLUMNS);
const exchangeSummaryColumns = pickColumns(ex, EXCHANGE_SUMMARY_COLUMNS);
const chainSummaryColumns = pickColumns(rc, CHAIN_SUMMARY_COLUMNS);

const apiKeyColumns = pickColumns(apiKeys, API_KEY_COLUMNS);
const chainCounters = { usageCount: rc.usageCount, totalRevenueCents: rc.totalRevenueCents };

/** MySQL TIMESTAMP keeps whole seconds; truncating here keeps cursors and reads consistent. */
const wholeSeconds = (date: Date) => new Date(Math.floor(date.getTime() / 1000) * 1000);

type InsertResult = [{ insertId: number; affectedRows: number }, unknown];

export function createMysqlStore(database: MysqlDatabase): Store {
  const { db, pool } = database;
  const ph = sql.placeholder;
  const payloads = createMysqlPayloadStore(database);

  // The hot reads, built once and decoded by compiled row mappers (prepared.ts), on the pool unless given a transaction's connection.
  const exchangeById = lazy(() => mysqlSelectRows(pool, db.select(exchangeColumns).from(ex).where(eq(ex.id, ph("id"))).limit(1), exchangeColumns));
  const chainById = lazy(() => mysqlSelectRows(pool, db.select(chainColumns).from(rc).where(eq(rc.id, ph("id"))).limit(1), chainColumns));
  const listingById = lazy(() =>
    mysqlSelectRows(pool, db.select(exchangeColumns).from(ex).where(and(eq(ex.id, ph("id")), isListing(ex))).limit(1), exchangeColumns),
  );
  const purchaseOf = lazy(() =>
    mysqlSelectRows(
      pool,
      db
        .select(exchangeColumns)
        .from(ex)
        .where(and(eq(ex.listingId, ph("listingId")), eq(ex.buyerId, ph("buyerId")), eq(ex.status, "completed")))
        .limit(1),
      exchangeColumns,
    ),
  );
  // Statements as SQL text, built once, run with `runSql` on the pool or in a transaction (Drizzle
  // prepares per session, and a transaction is a session of its own: built per call they cost
  // ~150 µs of CPU per chain use).
  const insertListingSql = lazy(() =>
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
        createdAt: ph("createdAt"),
      })
      .toSQL(),
  );
  /** A publish's insert (Drizzle-built SQL) after the payload it carries, in one transaction; its new row's id. */
  const insertWithPayload = (payload: NewPayload, insert: { sql: string; params: unknown[] }, values?: Record<string, unknown>) =>
    inMysqlTransaction(pool, async (connection) => {
      await payloads.putOn(connection, payload);
      const [result] = (await runSql(connection, insert, values)) as [ResultSetHeader, unknown];
      return result.insertId;
    });
  // A trade (a purchase or a chain use: one of listingId and chainId is null).
  const tradeInsertSql = lazy(() =>
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
        chainId: ph("chainId"),
        payloadDigest: ph("payloadDigest"),
        payloadSize: ph("payloadSize"),
        createdAt: ph("createdAt"),
      })
      .toSQL(),
  );
  const chainBumpSql = lazy(() =>
    db
      .update(rc)
      .set({ usageCount: sql`${rc.usageCount} + 1`, totalRevenueCents: sql`${rc.totalRevenueCents} + ${ph("revenue")}` })
      .where(and(eq(rc.id, ph("id")), eq(rc.status, "active")))
      .toSQL(),
  );
  const chainCountersOf = lazy(() => mysqlSelectRows(pool, db.select(chainCounters).from(rc).where(eq(rc.id, ph("id"))), chainCounters));
  const listingPages = new StatementCache<ReturnType<typeof prepareListingPage>>();
  // Browse pages run as mysql2 text queries decoded by compiled row mappers (prepared.ts).
  const prepareListingPage = (filter: ListingFilter) =>
    mysqlSelectRows(
      pool,
      db
        .select(exchangeSummaryColumns)
        .from(ex)
        .where(listingBrowseWhere(ex, placeholderFilter(filter)))
        .orderBy(desc(ex.createdAt), desc(ex.id))
        .limit(ph("limit"))
        .offset(ph("offset")),
      exchangeSummaryColumns,
      "text",
    );
  const chainPages = new StatementCache<ReturnType<typeof prepareChainPage>>();
  const prepareChainPage = (filter: ChainFilter) =>
    mysqlSelectRows(
      pool,
      db
        .select(chainSummaryColumns)
        .from(rc)
        .where(chainBrowseWhere(rc, placeholderFilter(filter)))
        .orderBy(desc(rc.createdAt), desc(rc.id))
        .limit(ph("limit"))
        .offset(ph("offset")),
      chainSummaryColumns,
      "text",
    );
  /** A page's placeholder values in driver form: money as DECIMAL text, dates as DATETIME text. */
  const pageValues = (filter: ListingFilter | ChainFilter) => {
    const money = (cents: number | undefined) => (cents === undefined ? undefined : ex.priceCents.mapToDriverValue(cents));
    return {
      ...filter,
      minPriceCents: money(filter.minPriceCents),
      maxPriceCents: money(filter.maxPriceCents),
      afterCreatedAt: filter.after ? ex.createdAt.mapToDriverValue(filter.after.createdAt) : undefined,
      afterId: filter.after?.id,
    };
  };

  const findExchange = async (id: number) => (await exchangeById()({ id }))[0] ?? null;
  const findChain = async (id: number): Promise<ChainRow | null> => (await chainById()({ id }))[0] ?? null;

  const store: Store = {
    dialect: "mysql",

    async insertListing(listing, payload) {
      const values = { ...listing, createdAt: wholeSeconds(new Date()) };
      if (!payload) {
        const [result] = (await runSql(pool, insertListingSql(), values)) as [ResultSetHeader, unknown];
        return result.insertId;
      }
      return insertWithPayload(payload, insertListingSql(), values);
    },

    async findListing(id) {
      return (await listingById()({ id }))[0] ?? null;
    },

    async browseListings(filter) {
      return listingPages.get(filterShape(filter), () => prepareListingPage(filter))(pageValues(filter));
    },

    async findPurchase(listing, buyerId) {
      return (await purchaseOf()({ listingId: listing.id, buyerId }))[0] ?? legacySale(listing, buyerId);
    },

    async recordPurchase(purchase) {
      const { listing, buyerId } = purchase;
      // The unique index (listing_id, buyer_id) decides races: the loser's INSERT fails and it
      // returns the winner's purchase. (mysql2 sets CLIENT_FOUND_ROWS, so ON DUPLICATE KEY
      // UPDATE could not tell an insert from a duplicate by affectedRows.)
      const values: TradeValues = { ...purchaseTrade(purchase), createdAt: wholeSeconds(new Date()) };
      try {
        const [result] = (await runSql(pool, tradeInsertSql(), values)) as [ResultSetHeader, unknown];
        return { trade: insertedTrade(result.insertId, values), created: true };
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        const existing = await store.findPurchase(listing, buyerId);
        if (!existing) throw error;
        return { trade: existing, created: false };
      }
    },

    async insertChain(chain, payload) {
      const insert = db.insert(rc).values({ ...chain, status: "active", createdAt: wholeSeconds(new Date()) });
      if (!payload) {
        const [result] = (await insert) as unknown as InsertResult;
        return result.insertId;
      }
      return insertWithPayload(payload, insert.toSQL());
    },

    findChain,

    async browseChains(filter) {
      return chainPages.get(filterShape(filter), () => prepareChainPage(filter))(pageValues(filter));
    },

    async recordChainUse(use) {
      const { chain, priceCents } = use;
      return inMysqlTransaction(pool, async (connection) => {
        // Counters first: the row lock serialises concurrent uses and the WHERE re-checks availability.
        const [bump] = (await runSql(connection, chainBumpSql(), { id: chain.id, revenue: centsToDecimalString(priceCents) })) as [ResultSetHeader, unknown];
        if (bump.affectedRows !== 1) throw new ChainUnavailableError(chain.id);
        const values: TradeValues = { ...chainUseTrade(use), createdAt: wholeSeconds(new Date()) };
        const [insert] = (await runSql(connection, tradeInsertSql(), values)) as [ResultSetHeader, unknown];
        const trade = insertedTrade(insert.insertId, values);
        // The counters this use moved (the row is still locked by the UPDATE); the rest is the row the use began with.
        const [counters] = await chainCountersOf()({ id: chain.id }, connection);
        return { trade, chain: { ...chain, ...counters! } };
      });
    },

    async listTrades(userId, role, limit, offset) {
      return db
        .select(exchangeSummaryColumns)
        .from(ex)
        .where(tradesWhere(ex, userId, role))
        .orderBy(desc(ex.createdAt), desc(ex.id))
        .limit(limit)
        .offset(offset);
    },

    findTrade: async (id) => {
      const row = await findExchange(id);
      return row && row.status === "completed" ? row : null;
    },

    async stats() {
      const [exchange] = await db.select(exchangeStatsSelection(ex)).from(ex);
      const [chains] = await db.select(chainStatsSelection(rc)).from(rc);
      return {
        totalMemories: Number(exchange!.totalMemories),
        availableMemories: Number(exchange!.availableMemories),
        totalTransactions: Number(exchange!.totalTransactions),
        chainUses: Number(exchange!.chainUses),
        // SUM over DECIMAL is an exact DECIMAL string.
        totalVolumeCents: decimalStringToCents(String(exchange!.totalVolume)),
        totalReasoningChains: Number(chains!.total),
        activeReasoningChains: Number(chains!.active),
      };
    },

    async insertApiKey(key) {
      const [result] = (await db.insert(apiKeys).values({
        userId: key.userId,
        name: key.name,
        keyHash: key.keyHash,
        prefix: key.prefix,
        scopes: key.scopes.join(","),
        expiresAt: key.expiresAt ? wholeSeconds(key.expiresAt) : null,
        createdAt: wholeSeconds(new Date()),
      })) as unknown as InsertResult;
      return (await store.findApiKey(result.insertId))!;
    },

    async findApiKeyByHash(keyHash) {
      const rows = await db.select(apiKeyColumns).from(apiKeys).where(eq(apiKeys.keyHash, keyHash)).limit(1);
      return rows[0] ? toApiKeyRow(rows[0]) : null;
    },

    async findApiKey(id) {
      const rows = await db.select(apiKeyColumns).from(apiKeys).where(eq(apiKeys.id, id)).limit(1);
      return rows[0] ? toApiKeyRow(rows[0]) : null;
    },

    async listApiKeys(userId) {
      const rows = await db
        .select(apiKeyColumns)
        .from(apiKeys)
        .where(userId === undefined ? undefined : eq(apiKeys.userId, userId))
        .orderBy(asc(apiKeys.id));
      return rows.map(toApiKeyRow);
    },

    async revokeApiKey(id, at) {
      const [result] = (await db
        .update(apiKeys)
        .set({ revokedAt: wholeSeconds(at) })
        .where(and(eq(apiKeys.id, id), sql`${apiKeys.revokedAt} IS NULL`))) as unknown as InsertResult;
      return result.affectedRows === 1;
    },

    async touchApiKeys(ids, at) {
      if (ids.length === 0) return;
      await db.update(apiKeys).set({ lastUsedAt: wholeSeconds(at) }).where(inArray(apiKeys.id, ids));
    },

    payloads,

    async ping() {
      await database.pool.query("SELECT 1");
    },
    isMigrated: () => isMigrated(database),
    close: () => database.close(),
  };
  return store;
}
