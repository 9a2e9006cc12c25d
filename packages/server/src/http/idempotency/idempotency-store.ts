import type { Database } from "../../db/open-database.js";
import { createMysqlIdempotencyStore } from "./mysql-idempotency-store.js";
import { createSqliteIdempotencyStore } from "./sqlite-idempotency-store.js";

/**
 * Persistence of Idempotency-Key records (`mx_idempotency_keys` and the
 * response body chunks in `mx_idempotency_chunks`). The unique index on
 * (key_id, idempotency_key) decides which of two racing requests executes, so
 * the guarantee holds across instances. `locked_at` is the owner's fencing
 * token: completing or releasing a record only works for the request that
 * holds the current lock. Times are epoch milliseconds.
 */
export interface IdempotencyRecord {
  id: number;
  requestHash: string;
  state: "in_flight" | "done";
  statusCode: number | null;
  contentType: string | null;
  chunkCount: number;
  createdAt: number;
  lockedAt: number;
}

export interface StoredResponse {
  statusCode: number;
  contentType: string | null;
  /** gzip of the response body, already split into chunks */
  chunks: Uint8Array[];
}

export interface IdempotencyStore {
  /** Inserts an in-flight record; null when (keyId, key) already has one. */
  insert(keyId: number, key: string, requestHash: string, now: number): Promise<number | null>;
  find(keyId: number, key: string): Promise<IdempotencyRecord | null>;
  /** Takes over an in-flight record whose lock is still `seenLockedAt` (an abandoned request); true when won. */
  relock(id: number, seenLockedAt: number, now: number): Promise<boolean>;
  /** Stores the response and marks the record done, if `lockedAt` still holds the lock. */
  complete(id: number, lockedAt: number, response: StoredResponse): Promise<boolean>;
  /** Deletes an in-flight record (and any chunks) if `lockedAt` still holds the lock, so the key can be retried. */
  release(id: number, lockedAt: number): Promise<void>;
  /** Deletes a record (and its chunks) created at `createdAt` (expired; a newer record under the same key survives). */
  remove(id: number, createdAt: number): Promise<void>;
  readChunks(id: number): Promise<Uint8Array[]>;
  /** Deletes up to `limit` records created before `before`; returns how many. */
  deleteExpired(before: number, limit: number): Promise<number>;
}

export function createIdempotencyStore(database: Database): IdempotencyStore {
  return database.dialect === "mysql" ? createMysqlIdempotencyStore(database) : createSqliteIdempotencyStore(database);
}
