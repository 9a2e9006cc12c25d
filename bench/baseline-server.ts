/**
 * The bare-metal baseline of `pnpm bench`: a minimal Fastify server running
 * the service's SQL through the raw driver (better-sqlite3 prepared
 * statements, mysql2 pool `execute`), with no auth, no validation, no
 * logging, no metrics. What the service does on top of this is its overhead.
 *
 *   BASELINE_DATABASE_URL=… BASELINE_PORT=… node --conditions=source --import tsx bench/baseline-server.ts
 *
 * Answers carry the same JSON shapes as the REST API so response sizes match.
 * Publish stores the payload's JSON bytes as one chunk (the service validates
 * it and encodes safetensors first); purchase and use decode the stored
 * safetensors like the service does, so both sides do the same data work.
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { safetensorsToKvCache } from "@memory-exchange/shared";
import { parseDatabaseUrl } from "../packages/server/src/config.js";
import { openDatabase, type MysqlDatabase, type SqliteDatabase } from "../packages/server/src/db/open-database.js";

// Fastify and the drivers are the server package's dependencies, not the workspace root's.
const require = createRequire(new URL("../packages/server/package.json", import.meta.url));
const { fastify } = require("fastify") as typeof import("../packages/server/node_modules/fastify/fastify.js");

type Row = Record<string, unknown>;

interface BrowseFilter {
  memoryType?: string;
  maxPriceCents?: number;
  minPriceCents?: number;
  limit: number;
  offset: number;
}

interface Driver {
  browse(filter: BrowseFilter): Promise<Row[]>;
  publish(listing: { sellerId: number; memoryType: string; sourceModel: string; priceCents: number; description: string | null; bytes: Buffer; digest: string }): Promise<number>;
  findListing(id: number): Promise<Row | undefined>;
  /** inserts the trade unless the buyer has one; returns its id and whether it is new */
  purchase(listing: Row, buyerId: number, targetModel: string): Promise<{ id: number; created: boolean }>;
  findChain(id: number): Promise<Row | undefined>;
  useChain(chain: Row, userId: number, priceCents: number, targetModel: string): Promise<number>;
  payload(digest: string): Promise<Buffer | undefined>;
}

const LISTING_COLUMNS =
  "id, seller_id, buyer_id, memory_type, source_model, description, price, status, token_count, context_length, quality_score, payload_size, payload_digest, createdAt";
const CHAIN_COLUMNS =
  "id, creator_id, chain_name, description, category, source_model, step_count, price_per_use, usage_count, total_revenue, avg_quality, review_count, input_example, output_example, status, payload_size, payload_digest, createdAt";
const IS_LISTING = "listing_id IS NULL AND chain_id IS NULL";

function browseSql(f: BrowseFilter): { sql: string; params: (string | number)[] } {
  const where = ["status = 'pending'", "buyer_id = 0", IS_LISTING];
  const params: (string | number)[] = [];
  if (f.memoryType) where.push("memory_type = ?"), params.push(f.memoryType);
  if (f.minPriceCents !== undefined) where.push("price >= ?"), params.push(f.minPriceCents);
  if (f.maxPriceCents !== undefined) where.push("price <= ?"), params.push(f.maxPriceCents);
  // limit/offset inlined as integers: mysql2's execute rejects numeric LIMIT placeholders on some servers
  return {
    sql: `SELECT ${LISTING_COLUMNS} FROM memory_exchanges WHERE ${where.join(" AND ")} ORDER BY createdAt DESC, id DESC LIMIT ${f.limit} OFFSET ${f.offset}`,
    params,
  };
}

function sqliteDriver(database: SqliteDatabase): Driver {
  const { sqlite } = database;
  const statements = new Map<string, ReturnType<typeof sqlite.prepare<unknown[]>>>();
  const prepared = (sql: string) => {
    let statement = statements.get(sql);
    if (!statement) statements.set(sql, (statement = sqlite.prepare<unknown[]>(sql)));
    return statement;
  };
  // SQLite stores money as integer cents; the MySQL family as DECIMAL.
  const cents = (price: number) => price;
  const publish = sqlite.transaction((l: Parameters<Driver["publish"]>[0]) => {
    if (!prepared("SELECT digest FROM mx_payloads WHERE digest = ?").get(l.digest)) {
      prepared("INSERT INTO mx_payload_chunks (digest, seq, data) VALUES (?, 0, ?) ON CONFLICT DO NOTHING").run(l.digest, l.bytes);
      prepared("INSERT INTO mx_payloads (digest, size, chunk_count, kind, tensors) VALUES (?, ?, 1, 'kv-cache', '{}') ON CONFLICT DO NOTHING").run(l.digest, l.bytes.length);
    }
    prepared("INSERT INTO mx_payload_owners (digest, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING").run(l.digest, l.sellerId);
    const result = prepared(
      "INSERT INTO memory_exchanges (seller_id, buyer_id, memory_type, source_model, price, description, token_count, context_length, payload_digest, payload_size, status) VALUES (?, 0, ?, ?, ?, ?, NULL, NULL, ?, ?, 'pending')",
    ).run(l.sellerId, l.memoryType, l.sourceModel, cents(l.priceCents), l.description, l.digest, l.bytes.length);
    return Number(result.lastInsertRowid);
  });
  const useChain = sqlite.transaction((chain: Row, userId: number, priceCents: number, targetModel: string) => {
    prepared("UPDATE reasoning_chains SET usage_count = usage_count + 1, total_revenue = total_revenue + ? WHERE id = ? AND status = 'active'").run(priceCents, chain.id);
    const result = prepared(
      "INSERT INTO memory_exchanges (seller_id, buyer_id, memory_type, source_model, target_model, price, status, chain_id, payload_digest, payload_size) VALUES (?, ?, 'reasoning_chain', ?, ?, ?, 'completed', ?, ?, ?)",
    ).run(chain.creator_id, userId, chain.source_model, targetModel, priceCents, chain.id, chain.payload_digest, chain.payload_size);
    return Number(result.lastInsertRowid);
  });
  return {
    async browse(filter) {
      const { sql, params } = browseSql(filter);
      return prepared(sql).all(...params) as Row[];
    },
    publish: async (listing) => publish(listing),
    findListing: async (id) => prepared(`SELECT ${LISTING_COLUMNS} FROM memory_exchanges WHERE id = ? AND ${IS_LISTING}`).get(id) as Row | undefined,
    async purchase(listing, buyerId, targetModel) {
      const existing = prepared("SELECT id FROM memory_exchanges WHERE listing_id = ? AND buyer_id = ? AND status = 'completed'").get(listing.id, buyerId) as Row | undefined;
      if (existing) return { id: Number(existing.id), created: false };
      const result = prepared(
        "INSERT INTO memory_exchanges (seller_id, buyer_id, memory_type, source_model, target_model, price, status, listing_id, payload_digest, payload_size) VALUES (?, ?, ?, ?, ?, ?, 'completed', ?, ?, ?) ON CONFLICT DO NOTHING",
      ).run(listing.seller_id, buyerId, listing.memory_type, listing.source_model, targetModel, listing.price, listing.id, listing.payload_digest, listing.payload_size);
      return { id: Number(result.lastInsertRowid), created: result.changes === 1 };
    },
    findChain: async (id) => prepared(`SELECT ${CHAIN_COLUMNS} FROM reasoning_chains WHERE id = ?`).get(id) as Row | undefined,
    useChain: async (chain, userId, priceCents, targetModel) => useChain(chain, userId, priceCents, targetModel),
    async payload(digest) {
      const chunks = prepared("SELECT data FROM mx_payload_chunks WHERE digest = ? ORDER BY seq").all(digest) as { data: Buffer }[];
      return chunks.length ? Buffer.concat(chunks.map((c) => c.data)) : undefined;
    },
  };
}

function mysqlDriver(database: MysqlDatabase): Driver {
  const { pool } = database;
  type Result = { insertId: number; affectedRows: number };
  const rows = async (sql: string, params: unknown[]) => (await pool.execute(sql, params as never[]))[0] as Row[];
  const run = async (sql: string, params: unknown[]) => (await pool.execute(sql, params as never[]))[0] as unknown as Result;
  const decimal = (cents: number) => (cents / 100).toFixed(2);
  return {
    async browse(filter) {
      const { sql, params } = browseSql(filter);
      // the only numeric parameters are prices, DECIMAL on this side
      return rows(sql, params.map((p) => (typeof p === "number" ? decimal(p) : p)));
    },
    async publish(l) {
      if ((await rows("SELECT digest FROM mx_payloads WHERE digest = ?", [l.digest])).length === 0) {
        await run("INSERT INTO mx_payload_chunks (digest, seq, data) VALUES (?, 0, ?) ON DUPLICATE KEY UPDATE seq = seq", [l.digest, l.bytes]);
        await run("INSERT INTO mx_payloads (digest, size, chunk_count, kind, tensors) VALUES (?, ?, 1, 'kv-cache', '{}') ON DUPLICATE KEY UPDATE digest = digest", [l.digest, l.bytes.length]);
      }
      await run("INSERT INTO mx_payload_owners (digest, user_id) VALUES (?, ?) ON DUPLICATE KEY UPDATE user_id = user_id", [l.digest, l.sellerId]);
      const result = await run(
        "INSERT INTO memory_exchanges (seller_id, buyer_id, memory_type, source_model, price, description, token_count, context_length, payload_digest, payload_size, status) VALUES (?, 0, ?, ?, ?, ?, NULL, NULL, ?, ?, 'pending')",
        [l.sellerId, l.memoryType, l.sourceModel, decimal(l.priceCents), l.description, l.digest, l.bytes.length],
      );
      return result.insertId;
    },
    findListing: async (id) => (await rows(`SELECT ${LISTING_COLUMNS} FROM memory_exchanges WHERE id = ? AND ${IS_LISTING}`, [id]))[0],
    async purchase(listing, buyerId, targetModel) {
      const [existing] = await rows("SELECT id FROM memory_exchanges WHERE listing_id = ? AND buyer_id = ? AND status = 'completed'", [listing.id, buyerId]);
      if (existing) return { id: Number(existing.id), created: false };
      try {
        const result = await run(
          "INSERT INTO memory_exchanges (seller_id, buyer_id, memory_type, source_model, target_model, price, status, listing_id, payload_digest, payload_size) VALUES (?, ?, ?, ?, ?, ?, 'completed', ?, ?, ?)",
          [listing.seller_id, buyerId, listing.memory_type, listing.source_model, targetModel, listing.price, listing.id, listing.payload_digest, listing.payload_size],
        );
        return { id: result.insertId, created: true };
      } catch (error) {
        if ((error as { code?: string }).code !== "ER_DUP_ENTRY") throw error;
        const [row] = await rows("SELECT id FROM memory_exchanges WHERE listing_id = ? AND buyer_id = ?", [listing.id, buyerId]);
        return { id: Number(row!.id), created: false };
      }
    },
    findChain: async (id) => (await rows(`SELECT ${CHAIN_COLUMNS} FROM reasoning_chains WHERE id = ?`, [id]))[0],
    async useChain(chain, userId, priceCents, targetModel) {
      const connection = await pool.getConnection();
      try {
        await connection.beginTransaction();
        await connection.execute("UPDATE reasoning_chains SET usage_count = usage_count + 1, total_revenue = total_revenue + ? WHERE id = ? AND status = 'active'", [decimal(priceCents), chain.id] as never[]);
        const [result] = await connection.execute(
          "INSERT INTO memory_exchanges (seller_id, buyer_id, memory_type, source_model, target_model, price, status, chain_id, payload_digest, payload_size) VALUES (?, ?, 'reasoning_chain', ?, ?, ?, 'completed', ?, ?, ?)",
          [chain.creator_id, userId, chain.source_model, targetModel, decimal(priceCents), chain.id, chain.payload_digest, chain.payload_size] as never[],
        );
        await connection.commit();
        return (result as unknown as Result).insertId;
      } catch (error) {
        await connection.rollback();
        throw error;
      } finally {
        connection.release();
      }
    },
    async payload(digest) {
      const chunks = (await rows("SELECT data FROM mx_payload_chunks WHERE digest = ? ORDER BY seq", [digest])) as { data: Buffer }[];
      return chunks.length ? Buffer.concat(chunks.map((c) => c.data)) : undefined;
    },
  };
}

const money = (value: unknown, dialect: "sqlite" | "mysql") =>
  value === null || value === undefined ? null : dialect === "sqlite" ? Number(value) / 100 : Number(value);
const isoTime = (value: unknown, dialect: "sqlite" | "mysql") =>
  dialect === "sqlite" ? new Date(Number(value)).toISOString() : new Date(`${String(value).replace(" ", "T")}Z`).toISOString();
const listingStatus = (status: unknown) => (status === "pending" ? "available" : status === "completed" ? "sold" : "withdrawn");

async function main() {
  const url = process.env.BASELINE_DATABASE_URL;
  const port = Number(process.env.BASELINE_PORT ?? 0);
  if (!url) throw new Error("BASELINE_DATABASE_URL is required");
  const database = await openDatabase(parseDatabaseUrl(url, 10));
  const dialect = database.dialect;
  const driver = database.dialect === "sqlite" ? sqliteDriver(database) : mysqlDriver(database);

  const listing = (r: Row) => ({
    id: r.id,
    seller_id: r.seller_id,
    memory_type: r.memory_type,
    source_model: r.source_model,
    description: r.description,
    price: money(r.price, dialect),
    status: listingStatus(r.status),
    token_count: r.token_count,
    context_length: r.context_length,
    quality_score: money(r.quality_score, dialect),
    payload_size: r.payload_size,
    payload_digest: r.payload_digest,
    created_at: isoTime(r.createdAt, dialect),
  });
  const chain = (r: Row) => ({
    id: r.id,
    creator_id: r.creator_id,
    chain_name: r.chain_name,
    description: r.description,
    category: r.category,
    source_model: r.source_model,
    step_count: r.step_count,
    price_per_use: money(r.price_per_use, dialect),
    usage_count: r.usage_count,
    total_revenue: money(r.total_revenue, dialect),
    avg_quality: money(r.avg_quality, dialect),
    review_count: r.review_count,
    input_example: r.input_example,
    output_example: r.output_example,
    status: r.status,
    payload_size: r.payload_size,
    payload_digest: r.payload_digest,
    created_at: isoTime(r.createdAt, dialect),
  });
  const alignment = (document: { sourceModel?: unknown }, targetModel: string) => ({
    applied: false,
    reason: document.sourceModel === targetModel ? "same model" : "no alignment matrix registered; delivered as published",
    source_model: document.sourceModel ?? null,
    target_model: targetModel,
  });
  const document = async (digest: unknown) => safetensorsToKvCache((await driver.payload(String(digest)))!) as { sourceModel?: unknown };
  const actor = (headers: Record<string, unknown>) => Number(headers["x-user-id"] ?? 2);
  const version = "baseline";
  const health = { status: "ok", service: "memory-exchange", version };

  const app = fastify({ logger: false });
  app.get("/health", async () => ({ ...health, success: true, data: health }));

  app.get("/api/v1/memory/browse", async (request) => {
    const q = request.query as Record<string, string | undefined>;
    const cents = (v: string | undefined) => (v === undefined ? undefined : Math.round(Number(v) * 100));
    const limit = Number(q.limit ?? 20);
    const rows = await driver.browse({
      memoryType: q.memory_type,
      minPriceCents: cents(q.min_price),
      maxPriceCents: cents(q.max_price),
      limit,
      offset: Number(q.offset ?? 0),
    });
    return { success: true, data: { memories: rows.map(listing), count: rows.length, next_cursor: null } };
  });

  app.post("/api/v1/memory/publish", async (request, reply) => {
    const body = request.body as { memory_type: string; kv_cache_data: { sourceModel: string }; price: number; description?: string };
    const bytes = Buffer.from(JSON.stringify(body.kv_cache_data));
    const memoryId = await driver.publish({
      sellerId: actor(request.headers),
      memoryType: body.memory_type,
      sourceModel: body.kv_cache_data.sourceModel,
      priceCents: Math.round(body.price * 100),
      description: body.description ?? null,
      bytes,
      digest: createHash("sha256").update(bytes).digest("hex"),
    });
    return reply.code(201).send({ success: true, data: { memory_id: memoryId, message: "Memory published successfully" } });
  });

  app.post("/api/v1/memory/purchase", async (request, reply) => {
    const body = request.body as { memory_id: number; target_model: string };
    const row = await driver.findListing(body.memory_id);
    if (!row) return reply.code(404).send({ success: false, error: "not found", code: "NOT_FOUND" });
    const trade = await driver.purchase(row, actor(request.headers), body.target_model);
    const kvCacheData = await document(row.payload_digest);
    return {
      success: true,
      data: {
        transaction_id: trade.id,
        new_purchase: trade.created,
        memory: { ...listing(row), kv_cache_data: kvCacheData },
        alignment: alignment(kvCacheData, body.target_model),
        message: "Memory purchased successfully",
      },
    };
  });

  app.post("/api/v1/reasoning-chain/use", async (request, reply) => {
    const body = request.body as { chain_id: number; target_model: string };
    const row = await driver.findChain(body.chain_id);
    if (!row) return reply.code(404).send({ success: false, error: "not found", code: "NOT_FOUND" });
    const userId = actor(request.headers);
    const price = row.creator_id === userId ? 0 : Math.round((money(row.price_per_use, dialect) ?? 0) * 100);
    const transactionId = await driver.useChain(row, userId, price, body.target_model);
    const snapshot = await document(row.payload_digest);
    return {
      success: true,
      data: {
        transaction_id: transactionId,
        chain: chain(row),
        kv_cache_snapshot: snapshot,
        alignment: alignment(snapshot, body.target_model),
        message: "Reasoning chain used successfully",
      },
    };
  });

  await app.listen({ port, host: "127.0.0.1" });
  const stop = () => void app.close().then(() => database.close()).then(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`baseline: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
