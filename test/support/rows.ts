import type { MemoryExchangeServer } from "@memory-exchange/server";

/**
 * Direct reads of the test database, for assertions that must not trust the
 * API under test (row counts before/after, counters against recorded trades).
 */
export async function queryRows<T = Record<string, unknown>>(server: MemoryExchangeServer, text: string, params: unknown[] = []): Promise<T[]> {
  const { database } = server;
  if (database.dialect === "mysql") {
    const [rows] = await database.pool.query(text, params);
    return rows as T[];
  }
  return database.sqlite.prepare(text).all(...params) as T[];
}

/** Row counts of the tables a request could write to. */
export async function tableCounts(server: MemoryExchangeServer, tables = ["memory_exchanges", "reasoning_chains", "mx_payloads", "mx_payload_owners"]) {
  const counts: Record<string, number> = {};
  for (const table of tables) {
    const [row] = await queryRows<{ n: number | string }>(server, `SELECT COUNT(*) AS n FROM ${table}`);
    counts[table] = Number(row!.n);
  }
  return counts;
}

/** A DECIMAL(p,2) column as integer cents: MySQL returns exact decimal text, SQLite stores hundredths. */
export function cents(server: MemoryExchangeServer, value: unknown): number {
  if (server.database.dialect === "sqlite") return Number(value);
  const [whole = "0", fraction = ""] = String(value).split(".");
  const sign = whole.startsWith("-") ? -1 : 1;
  return sign * (Math.abs(Number(whole)) * 100 + Number((fraction + "00").slice(0, 2)));
}

/** Runs a statement that returns no rows (test setup: simulate another writer). */
export async function execute(server: MemoryExchangeServer, text: string, params: unknown[] = []): Promise<void> {
  const { database } = server;
  if (database.dialect === "mysql") await database.pool.query(text, params);
  else database.sqlite.prepare(text).run(...params);
}
