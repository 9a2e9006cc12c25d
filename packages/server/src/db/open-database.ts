import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import type { MySql2Database } from "drizzle-orm/mysql2";
import type { BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import type mysql from "mysql2/promise";
import type { DatabaseConfig } from "../config.js";
import * as mysqlSchema from "./mysql-schema.js";
import { guardQueryTimeouts } from "./query-timeout.js";
import * as sqliteSchema from "./sqlite-schema.js";
import { refreshStatistics } from "./sqlite-statistics.js";
import { startWalCheckpointer } from "./wal-checkpointer.js";

export interface MysqlDatabase {
  dialect: "mysql";
  db: MySql2Database<typeof mysqlSchema>;
  pool: mysql.Pool;
  close(): Promise<void>;
}

export interface SqliteDatabase {
  dialect: "sqlite";
  db: BetterSQLite3Database<typeof sqliteSchema>;
  sqlite: BetterSqlite3.Database;
  close(): Promise<void>;
}

export type Database = MysqlDatabase | SqliteDatabase;

/**
 * Only the configured dialect's driver is loaded (`import()`): the other one, mysql2 with its Drizzle
 * adapter or the better-sqlite3 addon, would only take memory (mysql2: about 6 MB of idle RSS).
 */
export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  return config.dialect === "sqlite" ? openSqlite(config.file) : openMysql(config);
}

const SQLITE_OPTIMIZE_INTERVAL_MS = 60 * 60 * 1000;

async function openSqlite(file: string): Promise<SqliteDatabase> {
  const [{ default: BetterSqlite3 }, { drizzle: drizzleSqlite }] = await Promise.all([
    import("better-sqlite3"),
    import("drizzle-orm/better-sqlite3"),
  ]);
  if (file !== ":memory:") mkdirSync(dirname(resolve(file)), { recursive: true });
  const sqlite = new BetterSqlite3(file);
  const wal = sqlite.pragma("journal_mode = WAL", { simple: true }) === "wal";
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("busy_timeout = 5000");
  // Query plans need table statistics, which SQLite only gathers on request. Its advice for a
  // long-lived connection: optimize (with a bounded ANALYZE) on open, then periodically.
  // A busy or read-only database only means no fresh statistics this time.
  const optimize = (mode: string) => {
    try {
      if (sqlite.open) refreshStatistics(sqlite, mode);
    } catch {
      // keep the previous statistics
    }
  };
  optimize("optimize = 0x10002");
  const optimizer = setInterval(() => optimize("optimize"), SQLITE_OPTIMIZE_INTERVAL_MS);
  optimizer.unref();
  // Checkpoints run in a worker once the WAL grows (wal-checkpointer.ts), never inside a request's commit.
  const checkpointer = wal ? startWalCheckpointer(sqlite, resolve(file)) : undefined;
  return {
    dialect: "sqlite",
    db: drizzleSqlite(sqlite, { schema: sqliteSchema }),
    sqlite,
    close: async () => {
      clearInterval(optimizer);
      await checkpointer?.stop();
      if (sqlite.open) sqlite.close();
    },
  };
}

async function openMysql(config: Extract<DatabaseConfig, { dialect: "mysql" }>): Promise<MysqlDatabase> {
  const [{ default: mysql }, { drizzle: drizzleMysql }] = await Promise.all([import("mysql2/promise"), import("drizzle-orm/mysql2")]);
  const pool = mysql.createPool({
    // A server on this host through its Unix socket: each round trip skips loopback TCP (README, Performance).
    ...(config.socketPath ? { socketPath: config.socketPath } : { host: config.host, port: config.port }),
    user: config.user,
    password: config.password,
    database: config.database,
    connectionLimit: config.poolSize,
    // Every timestamp is UTC on the wire and in the session, whatever the server's zone.
    timezone: "Z",
    dateStrings: true,
    supportBigNumbers: true,
    enableKeepAlive: true,
    // No call-site stack captured per query (~6% of a purchase's CPU): driver errors never reach
    // clients, and the log already names the procedure and request id of a failed query.
    trace: false,
    // Never wait longer to connect than a query may take.
    connectTimeout: Math.min(5_000, config.queryTimeoutMs || 5_000),
    ...(config.ssl ? { ssl: { minVersion: "TLSv1.2", rejectUnauthorized: true } } : {}),
  });
  guardQueryTimeouts(pool, config.queryTimeoutMs ?? 10_000);
  // Raw (callback) connection: set the session zone before the connection is handed out.
  pool.pool.on("connection", (connection) => {
    connection.query("SET time_zone = '+00:00'");
  });
  let closed = false;
  return {
    dialect: "mysql",
    db: drizzleMysql(pool, { schema: mysqlSchema, mode: "default" }),
    pool,
    close: async () => {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
