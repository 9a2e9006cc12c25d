import type { Pool, PoolConnection } from "mysql2/promise";

/** mysql2's code for a query that got no answer within its `timeout`. */
const QUERY_TIMEOUT = "PROTOCOL_SEQUENCE_TIMEOUT";
const GUARDED = Symbol("mx.queryTimeout");

/** A query the guard timed out: its connection is destroyed already, and must not go back to the pool. */
export const isQueryTimeout = (error: unknown) => (error as { code?: unknown } | null)?.code === QUERY_TIMEOUT;

type Sql = string | ({ sql: string; timeout?: number } & Record<string, unknown>);

function withTimeout(sql: Sql, timeoutMs: number): Sql {
  if (typeof sql === "string") return { sql, timeout: timeoutMs };
  return sql.timeout === undefined ? { ...sql, timeout: timeoutMs } : sql;
}

/**
 * Gives every query on a connection a timeout (unless it sets its own; 0
 * means none) and destroys the connection when one fires, so the pool opens
 * a fresh one instead of queueing behind a dead socket.
 */
function guardConnection(connection: PoolConnection, timeoutMs: number): PoolConnection {
  const target = connection as PoolConnection & { [GUARDED]?: true };
  if (target[GUARDED]) return connection;
  target[GUARDED] = true;
  for (const method of ["query", "execute"] as const) {
    const original = connection[method].bind(connection) as (sql: Sql, values?: unknown) => Promise<unknown>;
    (connection as unknown as Record<string, unknown>)[method] = async (sql: Sql, values?: unknown) => {
      try {
        return await original(withTimeout(sql, timeoutMs), values);
      } catch (error) {
        if (isQueryTimeout(error)) connection.destroy();
        throw error;
      }
    };
  }
  return connection;
}

/**
 * A network that silently drops packets (host down, partition) leaves
 * mysql2 waiting forever on an open socket; with this guard a query fails
 * after `timeoutMs` with PROTOCOL_SEQUENCE_TIMEOUT (503 DATABASE_UNAVAILABLE)
 * and its connection is replaced. Pool-level query/execute run on a guarded
 * connection of their own so the same rule holds for them.
 */
export function guardQueryTimeouts(pool: Pool, timeoutMs: number): Pool {
  if (timeoutMs <= 0) return pool;
  const getConnection = pool.getConnection.bind(pool);
  pool.getConnection = async () => guardConnection(await getConnection(), timeoutMs);
  for (const method of ["query", "execute"] as const) {
    (pool as unknown as Record<string, unknown>)[method] = async (sql: Sql, values?: unknown) => {
      const connection = await pool.getConnection();
      let destroyed = false;
      try {
        return await (connection[method] as (sql: Sql, values?: unknown) => Promise<unknown>)(sql, values);
      } catch (error) {
        destroyed = isQueryTimeout(error);
        throw error;
      } finally {
        if (!destroyed) connection.release();
      }
    };
  }
  return pool;
}
