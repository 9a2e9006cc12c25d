import type { SqliteDatabase } from "../../db/open-database.js";
import type { IdempotencyRecord, IdempotencyStore } from "./idempotency-store.js";

const COLUMNS =
  "id, request_hash AS requestHash, state, status_code AS statusCode, content_type AS contentType, " +
  "chunk_count AS chunkCount, created_at AS createdAt, locked_at AS lockedAt";

/**
 * SQLite: better-sqlite3 is synchronous, so each method runs to completion
 * on the event loop; the unique index still decides between processes.
 */
export function createSqliteIdempotencyStore(database: SqliteDatabase): IdempotencyStore {
  const { sqlite } = database;
  const deleteChunks = (id: number) => sqlite.prepare("DELETE FROM mx_idempotency_chunks WHERE record_id = ?").run(id);

  const completeTx = sqlite.transaction((id: number, lockedAt: number, statusCode: number, contentType: string | null, chunks: Uint8Array[]) => {
    const owned = sqlite.prepare("SELECT id FROM mx_idempotency_keys WHERE id = ? AND state = 'in_flight' AND locked_at = ?").get(id, lockedAt);
    if (!owned) return false;
    deleteChunks(id);
    const insert = sqlite.prepare("INSERT INTO mx_idempotency_chunks (record_id, seq, data) VALUES (?, ?, ?)");
    chunks.forEach((data, seq) => insert.run(id, seq, Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
    sqlite
      .prepare("UPDATE mx_idempotency_keys SET state = 'done', status_code = ?, content_type = ?, chunk_count = ? WHERE id = ?")
      .run(statusCode, contentType, chunks.length, id);
    return true;
  });

  const removeTx = sqlite.transaction((id: number, where: string, param: number) => {
    const result = sqlite.prepare(`DELETE FROM mx_idempotency_keys WHERE id = ? ${where}`).run(id, param);
    if (result.changes > 0) deleteChunks(id);
    return result.changes;
  });

  return {
    async insert(keyId, key, requestHash, now) {
      const result = sqlite
        .prepare(
          "INSERT INTO mx_idempotency_keys (key_id, idempotency_key, request_hash, state, created_at, locked_at) VALUES (?, ?, ?, 'in_flight', ?, ?) ON CONFLICT DO NOTHING",
        )
        .run(keyId, key, requestHash, now, now);
      return result.changes === 1 ? Number(result.lastInsertRowid) : null;
    },

    async find(keyId, key) {
      const row = sqlite.prepare(`SELECT ${COLUMNS} FROM mx_idempotency_keys WHERE key_id = ? AND idempotency_key = ?`).get(keyId, key) as
        | IdempotencyRecord
        | undefined;
      return row ?? null;
    },

    async relock(id, seenLockedAt, now) {
      const result = sqlite
        .prepare("UPDATE mx_idempotency_keys SET locked_at = ? WHERE id = ? AND state = 'in_flight' AND locked_at = ?")
        .run(now, id, seenLockedAt);
      return result.changes === 1;
    },

    async complete(id, lockedAt, response) {
      return completeTx.immediate(id, lockedAt, response.statusCode, response.contentType, response.chunks);
    },

    async release(id, lockedAt) {
      sqlite.transaction(() => {
        const result = sqlite.prepare("DELETE FROM mx_idempotency_keys WHERE id = ? AND state = 'in_flight' AND locked_at = ?").run(id, lockedAt);
        if (result.changes > 0) deleteChunks(id);
      }).immediate();
    },

    async remove(id, createdAt) {
      removeTx.immediate(id, "AND created_at = ?", createdAt);
    },

    async readChunks(id) {
      const rows = sqlite.prepare("SELECT data FROM mx_idempotency_chunks WHERE record_id = ? ORDER BY seq").all(id) as { data: Buffer }[];
      return rows.map((row) => new Uint8Array(row.data));
    },

    async deleteExpired(before, limit) {
      const ids = (sqlite.prepare("SELECT id FROM mx_idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?").all(before, limit) as { id: number }[]).map(
        (r) => r.id,
      );
      let deleted = 0;
      for (const id of ids) deleted += removeTx.immediate(id, "AND created_at < ?", before);
      return deleted;
    },
  };
}
