import { randomBytes } from "node:crypto";
import { and, eq, lt, lte, sql } from "drizzle-orm";
import type { ResultSetHeader, RowDataPacket } from "mysql2";
import { payloadChunks, payloadOwners, payloads, payloadUploads } from "../db/mysql-schema.js";
import type { MysqlDatabase } from "../db/open-database.js";
import { inMysqlTransaction, isDuplicateKey, runSql, type Queryable } from "./mysql-transaction.js";
import { lazy, mysqlSelectRows } from "./prepared.js";
import {
  asBuffer,
  asInfo,
  checkChunkRun,
  CHUNK_DELETE_BATCH,
  chunksOf,
  concatChunks,
  type NewPayload,
  type PayloadStore,
} from "./payload-store.js";

const infoColumns = {
  digest: payloads.digest,
  size: payloads.size,
  chunkCount: payloads.chunkCount,
  kind: payloads.kind,
  tensors: payloads.tensors,
  chunkKey: payloads.chunkKey,
};

/** The MySQL payload store, plus `putOn`: `put` run on a connection inside the caller's transaction (it needs one). */
export interface MysqlPayloadStore extends PayloadStore {
  putOn(connection: Queryable, payload: NewPayload): Promise<void>;
}

/**
 * Chunk rows go through mysql2 directly: `execute` sends a 1 MiB blob in the
 * binary protocol, where a client-side formatted query (what drizzle sends)
 * hex-encodes it and runs about five times slower.
 */
export function createMysqlPayloadStore(database: MysqlDatabase): MysqlPayloadStore {
  const { db, pool } = database;

  const insertChunk = async (chunkKey: string, seq: number, data: Uint8Array) => {
    await pool.execute("INSERT INTO mx_payload_chunks (digest, seq, data) VALUES (?, ?, ?)", [chunkKey, seq, asBuffer(data)]);
  };
  /** In batches: one statement never deletes hundreds of MiB (TiDB's transaction size limit). */
  const deleteChunks = async (chunkKey: string) => {
    for (;;) {
      const [result] = await pool.query<ResultSetHeader>(
        `DELETE FROM mx_payload_chunks WHERE digest = ? ORDER BY seq LIMIT ${CHUNK_DELETE_BATCH}`,
        [chunkKey],
      );
      if (result.affectedRows < CHUNK_DELETE_BATCH) return;
    }
  };
  const ph = sql.placeholder;

  // The statements of purchase, use and publish, built once (prepared.ts). Their values are strings
  // and integers: nothing a column encoder would change.
  const infoOf = lazy(() => mysqlSelectRows(pool, db.select(infoColumns).from(payloads).where(eq(payloads.digest, ph("digest"))).limit(1), infoColumns));
  // The only chunk of a small payload joined to its info: a delivery's info and data in one round trip.
  const infoWithChunkColumns = { ...infoColumns, data: payloadChunks.data };
  const infoWithChunk = lazy(() =>
    mysqlSelectRows(
      pool,
      db
        .select(infoWithChunkColumns)
        .from(payloads)
        .leftJoin(
          payloadChunks,
          and(
            eq(payloadChunks.digest, sql`COALESCE(${payloads.chunkKey}, ${payloads.digest})`),
            eq(payloadChunks.seq, 0),
            eq(payloads.chunkCount, 1),
            lte(payloads.size, ph("maxBytes")),
          ),
        )
        .where(eq(payloads.digest, ph("digest")))
        .limit(1),
      infoWithChunkColumns,
    ),
  );
  const ownerOf = lazy(() =>
    db
      .select({ digest: payloadOwners.digest })
      .from(payloadOwners)
      .where(and(eq(payloadOwners.digest, ph("digest")), eq(payloadOwners.userId, ph("userId"))))
      .limit(1)
      .prepare(),
  );
  // SQL text with placeholders, built once: `putOn` runs them on the pool or on the caller's connection.
  const insertOwnerSql = lazy(() =>
    db
      .insert(payloadOwners)
      .values({ digest: ph("digest"), userId: ph("userId") })
      .onDuplicateKeyUpdate({ set: { userId: sql`user_id` } })
      .toSQL(),
  );
  const insertPayloadSql = lazy(() =>
    db
      .insert(payloads)
      .values({ digest: ph("digest"), size: ph("size"), chunkCount: ph("chunkCount"), kind: ph("kind"), tensors: ph("tensors") })
      .toSQL(),
  );

  /**
   * The payload row first: its primary key settles publishes of the same
   * bytes (a second one waits for the first's transaction, then finds the
   * row), and finding it saves sending the bytes again. The chunks follow only
   * for a new payload; the transaction makes the row and its chunks appear
   * together. One round trip fewer than looking the digest up first.
   */
  const putOn = async (on: Queryable, payload: NewPayload) => {
    const chunks = [...chunksOf(payload.bytes)];
    const row = { digest: payload.digest, size: payload.bytes.length, chunkCount: chunks.length, kind: payload.kind, tensors: payload.tensors };
    const created = await runSql(on, insertPayloadSql(), row).then(
      () => true,
      (error: unknown) => {
        if (isDuplicateKey(error)) return false;
        throw error;
      },
    );
    if (created)
      for (const chunk of chunks)
        // A chunk left by an interrupted write of an older version stays as it was: same digest, same bytes.
        await on.execute("INSERT INTO mx_payload_chunks (digest, seq, data) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE seq = seq", [
          payload.digest,
          chunk.seq,
          asBuffer(chunk.data),
        ]);
    await runSql(on, insertOwnerSql(), { digest: payload.digest, userId: payload.ownerId });
  };

  const store: MysqlPayloadStore = {
    putOn,

    put: (payload) => inMysqlTransaction(pool, (connection) => putOn(connection, payload)),

    async info(digest) {
      const [row] = await infoOf()({ digest });
      return row ? asInfo(row) : null;
    },

    async infoWithBytes(digest, maxBytes) {
      const [row] = await infoWithChunk()({ digest, maxBytes });
      if (!row) return null;
      const { data, ...info } = row;
      return data ? { ...asInfo(info), bytes: data } : asInfo(info);
    },

    async read(digest) {
      const found = await store.info(digest);
      if (!found) return null;
      return concatChunks(await store.readChunks(found.chunkKey, 0, found.chunkCount - 1), found.size);
    },

    async readChunks(chunkKey, fromSeq, toSeq) {
      const [rows] = await pool.query<RowDataPacket[]>(
        "SELECT seq, data FROM mx_payload_chunks WHERE digest = ? AND seq BETWEEN ? AND ? ORDER BY seq",
        [chunkKey, fromSeq, toSeq],
      );
      const chunks = rows as { seq: number; data: Buffer }[];
      checkChunkRun(chunks, fromSeq, toSeq, chunkKey);
      return chunks.map((row) => row.data);
    },

    async isOwner(digest, userId) {
      return (await ownerOf().execute({ digest, userId })).length > 0;
    },

    async beginUpload(userId) {
      const id = `upload-${randomBytes(16).toString("hex")}`;
      await db.insert(payloadUploads).values({ id, userId, createdAt: new Date(Math.floor(Date.now() / 1000) * 1000) });
      return id;
    },

    writeUploadChunk: insertChunk,

    async finishUpload(upload) {
      const created = await db.transaction(async (tx) => {
        // The primary key settles two uploads of the same bytes finishing together: the second waits, then sees the first.
        await tx
          .insert(payloads)
          .values({
            digest: upload.digest,
            size: upload.size,
            chunkCount: upload.chunkCount,
            kind: upload.kind,
            tensors: upload.tensors,
            chunkKey: upload.uploadId,
          })
          .onDuplicateKeyUpdate({ set: { digest: sql`digest` } });
        const [row] = await tx.select({ chunkKey: payloads.chunkKey }).from(payloads).where(eq(payloads.digest, upload.digest)).for("update");
        const won = row?.chunkKey === upload.uploadId;
        // Adopted chunks belong to the payload now; a losing upload keeps its row until its chunks are gone.
        if (won) await tx.delete(payloadUploads).where(eq(payloadUploads.id, upload.uploadId));
        await tx
          .insert(payloadOwners)
          .values({ digest: upload.digest, userId: upload.ownerId })
          .onDuplicateKeyUpdate({ set: { userId: sql`user_id` } });
        return won;
      });
      if (!created) await store.abortUpload(upload.uploadId);
      return { created };
    },

    async abortUpload(uploadId) {
      await deleteChunks(uploadId);
      await db.delete(payloadUploads).where(eq(payloadUploads.id, uploadId));
    },

    async purgeStaleUploads(before) {
      const stale = await db.select({ id: payloadUploads.id }).from(payloadUploads).where(lt(payloadUploads.createdAt, before));
      for (const { id } of stale) {
        // Never drop chunks a payload points at (cannot happen unless a finish was cut short mid-transaction).
        const [adopted] = await db.select({ digest: payloads.digest }).from(payloads).where(eq(payloads.chunkKey, id)).limit(1);
        if (adopted) await db.delete(payloadUploads).where(eq(payloadUploads.id, id));
        else await store.abortUpload(id);
      }
      return stale.length;
    },
  };
  return store;
}
