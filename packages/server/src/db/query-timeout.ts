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

type Callback = (error: Error | null, rows?: unknown, fields?: unknown) => void;
type CoreConnection = Record<"query" | "execute", (sql: Sql, values: unknown, callback: Callback) => unknown> & {
  release(): void;
  destroy(): void;
};
type CorePool = { getConnection(callback: (error: Error | null, connection: CoreConnection) => void): void };

/**
 * A network that silently drops packets (host down, partition) leaves
 * mysql2 waiting forever on an open socket; with this guard a query fails
 * after `timeoutMs` with PROTOCOL_SEQUENCE_TIMEOUT (503 DATABASE_UNAVAILABLE)
 * and its connection is replaced. Pool-level query/execute run on a pool
 * connection of their own with the same rule; they use mysql2's callback
 * pool, as its own promise pool does: going through promise connections
 * cost ~10 µs more per query (of ~30), on every query the service makes.
 */
export function guardQueryTimeouts(pool: Pool, timeoutMs: number): Pool {
  if (timeoutMs <= 0) return pool;
  const getConnection = pool.getConnection.bind(pool);
  pool.getConnection = async () => guardConnection(await getConnection(), timeoutMs);
  const core = pool.pool as unknown as CorePool;
  for (const method of ["query", "execute"] as const) {
    (pool as unknown as Record<string, unknown>)[method] = (sql: Sql, values?: unknown) =>
      new Promise((resolve, reject) => {
        core.getConnection((connectError, connection) => {
          if (connectError) return reject(connectError);
          try {
            connection[method](withTimeout(sql, timeoutMs), values, (error, rows, fields) => {
              if (isQueryTimeout(error)) connection.destroy();
              else connection.release();
              if (error) reject(error);
              else resolve([rows, fields]);
            });
          } catch (error) {
            connection.release();
            reject(error);
          }
        });
      });
  }
  return pool;
}
