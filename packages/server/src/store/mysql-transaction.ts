import { fillPlaceholders } from "drizzle-orm";
import type { Pool, PoolConnection } from "mysql2/promise";
import { isQueryTimeout } from "../db/query-timeout.js";
import { causes } from "../errors.js";

/** A unique or primary key refused the row (the driver's error, or Drizzle's wrapping it). */
export function isDuplicateKey(error: unknown): boolean {
  for (const e of causes(error)) if ((e as { code?: unknown }).code === "ER_DUP_ENTRY") return true;
  return false;
}

/** A pool or one of its connections: both run statements the same way. */
export type Queryable = Pick<PoolConnection, "query" | "execute">;

/**
 * A prepared statement's values: its placeholders filled from `values`, an
 * undefined value as NULL (as a text query sends it; mysql2's `execute`
 * throws), and the values from `asTextFrom` on as text (a trailing LIMIT and
 * OFFSET: mysql2 sends a JS number as a DOUBLE unless the server hints an
 * integer, MySQL 8.0.22+ rejects a DOUBLE there, every server takes a numeric
 * string).
 */
export function executeValues(params: unknown[], values: Record<string, unknown>, asTextFrom = params.length): never[] {
  const bound = fillPlaceholders(params, values);
  for (let i = 0; i < bound.length; i++) bound[i] = bound[i] === undefined ? null : i >= asTextFrom ? String(bound[i]) : bound[i];
  return bound as never[];
}

/**
 * Runs a Drizzle-built statement (its `toSQL()`) on a pool or a connection,
 * its placeholders filled from `values`, as a server-side prepared statement:
 * sent as text, MariaDB parsed and planned a trade's long INSERT on every call.
 */
export const runSql = (on: Queryable, query: { sql: string; params: unknown[] }, values: Record<string, unknown> = {}) =>
  on.execute(query.sql, executeValues(query.params, values));

/**
 * Runs `work` in a transaction on one pool connection, for statements that
 * go to mysql2 directly (a chunk's blob in the binary protocol; Drizzle's own
 * `transaction` does not hand out its connection). Commits when `work`
 * resolves, rolls back when it throws. A connection whose query timed out was
 * destroyed by the guard (query-timeout.ts) and is not released.
 */
export async function inMysqlTransaction<T>(pool: Pool, work: (connection: PoolConnection) => Promise<T>): Promise<T> {
  const connection = await pool.getConnection();
  let destroyed = false;
  try {
    await connection.query("START TRANSACTION");
    const result = await work(connection);
    await connection.query("COMMIT");
    return result;
  } catch (error) {
    destroyed = isQueryTimeout(error);
    if (!destroyed) await connection.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    if (!destroyed) connection.release();
  }
}
