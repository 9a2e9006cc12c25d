import { fillPlaceholders } from "drizzle-orm";
import type { Pool, PoolConnection } from "mysql2/promise";
import { isQueryTimeout } from "../db/query-timeout.js";

/** A pool or one of its connections: both run statements the same way. */
export type Queryable = Pick<PoolConnection, "query" | "execute">;

/**
 * Runs a Drizzle-built statement (its `toSQL()`) on a pool or a connection,
 * its placeholders filled from `values` (an undefined value is NULL, as a
 * text query would send it), as a server-side prepared statement: sent as
 * text, MariaDB parsed and planned a trade's long INSERT on every call.
 */
export const runSql = (on: Queryable, query: { sql: string; params: unknown[] }, values: Record<string, unknown> = {}) =>
  on.execute(query.sql, fillPlaceholders(query.params, values).map((value) => value ?? null) as never[]);

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
