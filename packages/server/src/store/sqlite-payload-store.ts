import { randomBytes } from "node:crypto";
import { and, asc, between, eq, lt } from "drizzle-orm";
import type { SqliteDatabase } from "../db/open-database.js";
import { payloadChunks, payloadOwners, payloads, payloadUploads } from "../db/sqlite-schema.js";
import {
  asBuffer,
  checkChunkRun,
  chunksOf,
  concatChunks,
  type PayloadInfo,
  type PayloadKind,
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
export function createSqlitePayloadStore(database: SqliteDatabase): PayloadStore {
  const { db } = database;

  const info = (digest: string): PayloadInfo | null => {
    const row = db.select(infoColumns).from(payloads).where(eq(payloads.digest, digest)).get();
    return row ? { ...row, kind: row.kind as PayloadKind, chunkKey: row.chunkKey ?? row.digest } : null;
  };
  const readChunks = (chunkKey: string, fromSeq: number, toSeq: number): Uint8Array[] => {
    const rows = db
      .select({ seq: payloadChunks.seq, data: payloadChunks.data })
      .from(payloadChunks)
      .where(and(eq(payloadChunks.digest, chunkKey), between(payloadChunks.seq, fromSeq, toSeq)))
      .orderBy(asc(payloadChunks.seq))
      .all();
    checkChunkRun(rows, fromSeq, toSeq, chunkKey);
    return rows.map((row) => row.data);
  };
  const deleteChunks = (chunkKey: string) => {
    db.delete(payloadChunks).where(eq(payloadChunks.digest, chunkKey)).run();
  };
  const addOwner = (digest: string, userId: number) =>
    db.insert(payloadOwners).values({ digest, userId }).onConflictDoNothing().run();

  return {
    async put(payload) {
      db.transaction((tx) => {
        if (!info(payload.digest)) {
          let chunkCount = 0;
          for (const chunk of chunksOf(payload.bytes)) {
            tx.insert(payloadChunks)
              .values({ digest: payload.digest, seq: chunk.seq, data: asBuffer(chunk.data) })
              .onConflictDoNothing()
              .run();
            chunkCount++;
          }
          tx.insert(payloads)
            .values({ digest: payload.digest, size: payload.bytes.length, chunkCount, kind: payload.kind, tensors: payload.tensors })
            .onConflictDoNothing()
            .run();
        }
        tx.insert(payloadOwners).values({ digest: payload.digest, userId: payload.ownerId }).onConflictDoNothing().run();
      });
    },

    info: async (digest) => info(digest),

    async read(digest) {
      const found = info(digest);
      if (!found) return null;
      return concatChunks(readChunks(found.chunkKey, 0, found.chunkCount - 1), found.size);
    },

    readChunks: async (chunkKey, fromSeq, toSeq) => readChunks(chunkKey, fromSeq, toSeq),

    async isOwner(digest, userId) {
      return (
        db
          .select({ digest: payloadOwners.digest })
          .from(payloadOwners)
          .where(and(eq(payloadOwners.digest, digest), eq(payloadOwners.userId, userId)))
          .get() !== undefined
      );
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
      });
    },

    async abortUpload(uploadId) {
      db.transaction((tx) => {
        deleteChunks(uploadId);
        tx.delete(payloadUploads).where(eq(payloadUploads.id, uploadId)).run();
      });
    },

    async purgeStaleUploads(before) {
      const stale = db.select({ id: payloadUploads.id }).from(payloadUploads).where(lt(payloadUploads.createdAt, before)).all();
      for (const { id } of stale) {
        db.transaction((tx) => {
          deleteChunks(id);
          tx.delete(payloadUploads).where(eq(payloadUploads.id, id)).run();
        });
      }
      return stale.length;
    },
  };
}
