import type { ResultSetHeader, RowDataPacket } from "mysql2/promise";
import type { MysqlDatabase } from "../../db/open-database.js";
import { isDuplicateKey } from "../../store/mysql-transaction.js";
import type { IdempotencyRecord, IdempotencyStore } from "./idempotency-store.js";

const COLUMNS =
  "id, request_hash AS requestHash, state, status_code AS statusCode, content_type AS contentType, " +
  "chunk_count AS chunkCount, created_at AS createdAt, locked_at AS lockedAt";

/** MySQL / MariaDB / TiDB: plain INSERT (a duplicate is ER_DUP_ENTRY), BIGINTs come back as strings or numbers. */
export function createMysqlIdempotencyStore(database: MysqlDatabase): IdempotencyStore {
  const { pool } = database;
  const toRecord = (row: RowDataPacket): IdempotencyRecord => ({
    id: Number(row.id),
    requestHash: String(row.requestHash),
    state: row.state === "done" ? "done" : "in_flight",
    statusCode: row.statusCode === null ? null : Number(row.statusCode),
    contentType: row.contentType === null ? null : String(row.contentType),
    chunkCount: Number(row.chunkCount),
    createdAt: Number(row.createdAt),
    lockedAt: Number(row.lockedAt),
  });

  async function deleteRecords(ids: number[], extraWhere = "", params: unknown[] = []) {
    if (ids.length === 0) return 0;
    const connection = await pool.getConnection();
    try {
      await connection.beginTransaction();
      const [result] = await connection.query<ResultSetHeader>(`DELETE FROM mx_idempotency_keys WHERE id IN (?)${extraWhere}`, [ids, ...params]);
      await connection.query("DELETE FROM mx_idempotency_chunks WHERE record_id IN (?)", [ids]);
      await connection.commit();
      return result.affectedRows;
    } catch (error) {
      await connection.rollback().catch(() => undefined);
      throw error;
    } finally {
      connection.release();
    }
  }

  return {
    async insert(keyId, key, requestHash, now) {
      try {
        const [result] = await pool.query<ResultSetHeader>(
          "INSERT INTO mx_idempotency_keys (key_id, idempotency_key, request_hash, state, created_at, locked_at) VALUES (?, ?, ?, 'in_flight', ?, ?)",
          [keyId, key, requestHash, now, now],
        );
        return Number(result.insertId);
      } catch (error) {
        if (isDuplicateKey(error)) return null;
        throw error;
      }
    },

    async find(keyId, key) {
      const [rows] = await pool.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM mx_idempotency_keys WHERE key_id = ? AND idempotency_key = ?`, [keyId, key]);
      return rows[0] ? toRecord(rows[0]) : null;
    },

    async relock(id, seenLockedAt, now) {
      const [result] = await pool.query<ResultSetHeader>(
        "UPDATE mx_idempotency_keys SET locked_at = ? WHERE id = ? AND state = 'in_flight' AND locked_at = ?",
        [now, id, seenLockedAt],
      );
      // CLIENT_FOUND_ROWS: matched rows; now !== seenLockedAt, so a match is a change.
      return result.affectedRows === 1;
    },

    async complete(id, lockedAt, response) {
      const connection = await pool.getConnection();
      try {
        await connection.beginTransaction();
        // Locks the record: a concurrent takeover waits, then finds it done.
        const [owned] = await connection.query<RowDataPacket[]>(
          "SELECT id FROM mx_idempotency_keys WHERE id = ? AND state = 'in_flight' AND locked_at = ? FOR UPDATE",
          [id, lockedAt],
        );
        if (owned.length === 0) {
          await connection.rollback();
          return false;
        }
        await connection.query("DELETE FROM mx_idempotency_chunks WHERE record_id = ?", [id]);
        for (const [seq, data] of response.chunks.entries()) {
          await connection.query("INSERT INTO mx_idempotency_chunks (record_id, seq, data) VALUES (?, ?, ?)", [id, seq, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
        }
        await connection.query(
          "UPDATE mx_idempotency_keys SET state = 'done', status_code = ?, content_type = ?, chunk_count = ? WHERE id = ?",
          [response.statusCode, response.contentType, response.chunks.length, id],
        );
        await connection.commit();
        return true;
      } catch (error) {
        await connection.rollback().catch(() => undefined);
        throw error;
      } finally {
        connection.release();
      }
    },

    async release(id, lockedAt) {
      await deleteRecords([id], " AND state = 'in_flight' AND locked_at = ?", [lockedAt]);
    },

    async remove(id, createdAt) {
      await deleteRecords([id], " AND created_at = ?", [createdAt]);
    },

    async readChunks(id) {
      const [rows] = await pool.query<RowDataPacket[]>("SELECT data FROM mx_idempotency_chunks WHERE record_id = ? ORDER BY seq", [id]);
      return rows.map((row) => new Uint8Array(row.data as Buffer));
    },

    async deleteExpired(before, limit) {
      const [rows] = await pool.query<RowDataPacket[]>("SELECT id FROM mx_idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?", [before, limit]);
      return deleteRecords(rows.map((r) => Number(r.id)), " AND created_at < ?", [before]);
    },
  };
}
