import { randomBytes } from "node:crypto";
import { and, asc, between, eq, lt, sql } from "drizzle-orm";
import type { SqliteDatabase } from "../db/open-database.js";
import { payloadChunks, payloadOwners, payloads, payloadUploads } from "../db/sqlite-schema.js";
import { lazy } from "./prepared.js";
import {
  asBuffer,
  asInfo,
  checkChunkRun,
  chunksOf,
  concatChunks,
  type NewPayload,
  type PayloadInfo,
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

/**
 * better-sqlite3 is synchronous: each method runs to completion, so the
 * multi-step ones cannot interleave (helpers called inside a transaction use
 * the same connection, hence take part in it).
 */
/** Write transactions take the write lock at BEGIN (see `put`). */
const IMMEDIATE = { behavior: "immediate" } as const;

/** The SQLite payload store, plus `putRows`: `put`'s writes without a transaction, for a caller's transaction. */
export interface SqlitePayloadStore extends PayloadStore {
  putRows(payload: NewPayload): void;
}

export function createSqlitePayloadStore(database: SqliteDatabase): SqlitePayloadStore {
  const { db } = database;
  const ph = sql.placeholder;

  // The statements of purchase, use and publish, prepared once (prepared.ts). Every value here is a
  // string, an integer or a Buffer: nothing a column encoder would change.
  const infoOf = lazy(() => db.select(infoColumns).from(payloads).where(eq(payloads.digest, ph("digest"))).prepare());
  const chunkRun = lazy(() =>
    db
      .select({ seq: payloadChunks.seq, data: payloadChunks.data })
      .from(payloadChunks)
      .where(and(eq(payloadChunks.digest, ph("chunkKey")), between(payloadChunks.seq, ph("fromSeq"), ph("toSeq"))))
      .orderBy(asc(payloadChunks.seq))
      .prepare(),
  );
  const ownerOf = lazy(() =>
    db
      .select({ digest: payloadOwners.digest })
      .from(payloadOwners)
      .where(and(eq(payloadOwners.digest, ph("digest")), eq(payloadOwners.userId, ph("userId"))))
      .prepare(),
  );
  const insertOwner = lazy(() => db.insert(payloadOwners).values({ digest: ph("digest"), userId: ph("userId") }).onConflictDoNothing().prepare());
  const insertChunk = lazy(() => db.insert(payloadChunks).values({ digest: ph("digest"), seq: ph("seq"), data: ph("data") }).onConflictDoNothing().prepare());
  const insertPayload = lazy(() =>
    db
      .insert(payloads)
      .values({ digest: ph("digest"), size: ph("size"), chunkCount: ph("chunkCount"), kind: ph("kind"), tensors: ph("tensors") })
      .onConflictDoNothing()
      .prepare(),
  );

  const info = (digest: string): PayloadInfo | null => {
    const row = infoOf().get({ digest });
    return row ? asInfo(row) : null;
  };
  const readChunks = (chunkKey: string, fromSeq: number, toSeq: number): Uint8Array[] => {
    const rows = chunkRun().all({ chunkKey, fromSeq, toSeq });
    checkChunkRun(rows, fromSeq, toSeq, chunkKey);
    return rows.map((row) => row.data);
  };
  const deleteChunks = (chunkKey: string) => {
    db.delete(payloadChunks).where(eq(payloadChunks.digest, chunkKey)).run();
  };
  const addOwner = (digest: string, userId: number) => insertOwner().run({ digest, userId });
  const putRows = (payload: NewPayload) => {
    if (!info(payload.digest)) {
      let chunkCount = 0;
      for (const chunk of chunksOf(payload.bytes)) {
        insertChunk().run({ digest: payload.digest, seq: chunk.seq, data: asBuffer(chunk.data) });
        chunkCount++;
      }
      insertPayload().run({ digest: payload.digest, size: payload.bytes.length, chunkCount, kind: payload.kind, tensors: payload.tensors });
    }
    addOwner(payload.digest, payload.ownerId);
  };
  // better-sqlite3's own transaction function, made once: Drizzle's `transaction` builds a transaction
  // object (with a query builder per table) on every call.
  const putInTransaction = database.sqlite.transaction(putRows);

  return {
    putRows,

    async put(payload) {
      // Immediate: a deferred transaction that reads, then writes, fails with SQLITE_BUSY_SNAPSHOT when another
      // connection (another instance, the CLI) committed in between; BEGIN IMMEDIATE waits for the lock instead.
      putInTransaction.immediate(payload);
    },

    info: async (digest) => info(digest),

    // In-process: two prepared reads cost no round trip.
    async infoWithBytes(digest, maxBytes) {
      const found = info(digest);
      if (!found || found.chunkCount !== 1 || found.size > maxBytes) return found;
      const [bytes] = readChunks(found.chunkKey, 0, 0);
      return { ...found, bytes };
    },

    async read(digest) {
      const found = info(digest);
      if (!found) return null;
      return concatChunks(readChunks(found.chunkKey, 0, found.chunkCount - 1), found.size);
    },

    readChunks: async (chunkKey, fromSeq, toSeq) => readChunks(chunkKey, fromSeq, toSeq),

    async isOwner(digest, userId) {
      return ownerOf().get({ digest, userId }) !== undefined;
    },

    async beginUpload(userId) {
      const id = `upload-${randomBytes(16).toString("hex")}`;
      db.insert(payloadUploads).values({ id, userId }).run();
      return id;
    },

    async writeUploadChunk(uploadId, seq, data) {
      db.insert(payloadChunks).values({ digest: uploadId, seq, data: asBuffer(data) }).run();
    },

    async finishUpload(upload) {
      return db.transaction((tx) => {
        const existing = info(upload.digest);
        if (!existing) {
          tx.insert(payloads)
            .values({
              digest: upload.digest,
              size: upload.size,
              chunkCount: upload.chunkCount,
              kind: upload.kind,
              tensors: upload.tensors,
              chunkKey: upload.uploadId,
            })
            .run();
        } else {
          deleteChunks(upload.uploadId);
        }
        tx.delete(payloadUploads).where(eq(payloadUploads.id, upload.uploadId)).run();
        addOwner(upload.digest, upload.ownerId);
        return { created: !existing };
      }, IMMEDIATE);
    },

    async abortUpload(uploadId) {
      db.transaction((tx) => {
        deleteChunks(uploadId);
        tx.delete(payloadUploads).where(eq(payloadUploads.id, uploadId)).run();
      }, IMMEDIATE);
    },

    async purgeStaleUploads(before) {
      const stale = db.select({ id: payloadUploads.id }).from(payloadUploads).where(lt(payloadUploads.createdAt, before)).all();
      for (const { id } of stale) {
        db.transaction((tx) => {
          deleteChunks(id);
          tx.delete(payloadUploads).where(eq(payloadUploads.id, id)).run();
        }, IMMEDIATE);
      }
      return stale.length;
    },
  };
}
