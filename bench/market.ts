import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDatabaseUrl } from "../packages/server/src/config.js";
import * as mysqlSchema from "../packages/server/src/db/mysql-schema.js";
import { openDatabase, type Database } from "../packages/server/src/db/open-database.js";
import * as sqliteSchema from "../packages/server/src/db/sqlite-schema.js";
import { refreshStatistics } from "../packages/server/src/db/sqlite-statistics.js";

/**
 * The benchmark's market: a fresh database per dialect, 10,000 listings and
 * 1,000 reasoning chains. One listing and one chain are published through the
 * service's REST API (so their payload rows are written by the real code);
 * the rest are bulk-inserted copies pointing at those payloads, varied in
 * seller, type, model, price and age like a real market.
 */
export type Dialect = "sqlite" | "mysql";

export interface BenchDatabase {
  dialect: Dialect;
  url: string;
  drop(): Promise<void>;
}

export const MYSQL_URL = process.env.MX_BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/mx_bench";

/** Runs statements on the MySQL server outside the bench database (create/drop it). */
async function onMysqlServer(statements: string[]): Promise<void> {
  const url = new URL(MYSQL_URL);
  url.pathname = "/mysql";
  const database = await openDatabase(parseDatabaseUrl(url.toString(), 1));
  try {
    if (database.dialect !== "mysql") throw new Error("expected MySQL");
    for (const statement of statements) await database.pool.query(statement);
  } finally {
    await database.close();
  }
}

export async function mysqlReachable(): Promise<boolean> {
  try {
    await onMysqlServer(["SELECT 1"]);
    return true;
  } catch {
    return false;
  }
}

export async function prepareDatabase(dialect: Dialect): Promise<BenchDatabase> {
  if (dialect === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "mx-bench-"));
    return { dialect, url: `file:${join(dir, "bench.db")}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = new URL(MYSQL_URL).pathname.slice(1);
  if (!/^\w+$/.test(name)) throw new Error(`MX_BENCH_MYSQL_URL must name a plain database, got '${name}'`);
  await onMysqlServer([`DROP DATABASE IF EXISTS ${name}`, `CREATE DATABASE ${name}`]);
  return { dialect, url: MYSQL_URL, drop: () => onMysqlServer([`DROP DATABASE IF EXISTS ${name}`]) };
}

export const SOURCE_MODELS = ["llama-3-8b", "mistral-7b", "qwen2-7b", "gemma-2-9b"] as const;
export const MEMORY_TYPES = ["kv_cache", "kv_cache", "long_term_memory", "reasoning_chain"] as const;
export const CATEGORIES = ["math", "code", "planning", "retrieval", "summarization"] as const;
/** Sellers and creators are users 1..SELLERS; buyers start above them. */
export const SELLERS = 200;
export const FIRST_BUYER = 1_000;

/** A small KV cache ([2 layers][2 heads][4 tokens][8 dims], ~2.6 kB of JSON); `variant` changes one value (a new digest). */
export function smallKvCache(variant = 0) {
  const tensor = (offset: number) =>
    Array.from({ length: 2 }, (_, l) =>
      Array.from({ length: 2 }, (_, h) =>
        Array.from({ length: 4 }, (_, t) => Array.from({ length: 8 }, (_, d) => Math.round(Math.sin(offset + l * 64 + h * 32 + t * 8 + d) * 1e4) / 1e4)),
      ),
    );
  const keys = tensor(0);
  keys[0]![0]![0]![0] = variant;
  return { sourceModel: "llama-3-8b", keys, values: tensor(1), metadata: { tokenCount: 4 } };
}

interface Template {
  payloadDigest: string;
  payloadSize: number;
}

const BATCH = 500;
const DAY_MS = 86_400_000;

/** Bulk-inserts listings and chains copying the template rows' payload references (ids > the templates'). */
export async function seedMarket(
  url: string,
  counts: { listings: number; chains: number },
  templates: { listing: Template; chain: Template },
): Promise<void> {
  const database: Database = await openDatabase(parseDatabaseUrl(url, 2));
  const now = Date.now();
  // MySQL TIMESTAMP keeps whole seconds.
  const ago = (i: number, n: number) => new Date(Math.floor((now - 60_000 - (i / n) * 30 * DAY_MS) / 1000) * 1000);
  const listings = Array.from({ length: counts.listings }, (_, i) => ({
    sellerId: 1 + (i % SELLERS),
    buyerId: 0,
    memoryType: MEMORY_TYPES[i % MEMORY_TYPES.length]!,
    sourceModel: SOURCE_MODELS[i % SOURCE_MODELS.length]!,
    priceCents: 100 + ((i * 7919) % 9_900),
    description: `Warm KV cache #${i} for a support-bot prompt`,
    tokenCount: 4,
    contextLength: 4,
    status: "pending" as const,
    createdAt: ago(i, counts.listings),
    payloadDigest: templates.listing.payloadDigest,
    payloadSize: templates.listing.payloadSize,
  }));
  const chains = Array.from({ length: counts.chains }, (_, i) => ({
    creatorId: 1 + (i % SELLERS),
    chainName: `chain ${i}`,
    description: `Step-by-step reasoning chain #${i}`,
    category: CATEGORIES[i % CATEGORIES.length]!,
    sourceModel: "llama-3-8b",
    stepCount: 1 + (i % 12),
    pricePerUseCents: 10 + ((i * 104_729) % 490),
    status: "active" as const,
    createdAt: ago(i, counts.chains),
    updatedAt: ago(i, counts.chains),
    payloadDigest: templates.chain.payloadDigest,
    payloadSize: templates.chain.payloadSize,
  }));
  try {
    if (database.dialect === "sqlite") {
      const { db } = database;
      db.transaction((tx) => {
        for (let i = 0; i < listings.length; i += BATCH) tx.insert(sqliteSchema.memoryExchanges).values(listings.slice(i, i + BATCH)).run();
        for (let i = 0; i < chains.length; i += BATCH) tx.insert(sqliteSchema.reasoningChains).values(chains.slice(i, i + BATCH)).run();
      });
      // As the service does: statistics without STAT4 samples (sqlite-statistics.ts), so the service and the
      // baseline plan their queries on the same statistics.
      refreshStatistics(database.sqlite);
    } else {
      const { db } = database;
      await db.transaction(async (tx) => {
        for (let i = 0; i < listings.length; i += BATCH) await tx.insert(mysqlSchema.memoryExchanges).values(listings.slice(i, i + BATCH));
        for (let i = 0; i < chains.length; i += BATCH) await tx.insert(mysqlSchema.reasoningChains).values(chains.slice(i, i + BATCH));
      });
      await database.pool.query("ANALYZE TABLE memory_exchanges, reasoning_chains");
    }
  } finally {
    await database.close();
  }
}
