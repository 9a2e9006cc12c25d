/**
 * The content-addressed payload store: each payload once, keyed by the SHA-256
 * of its safetensors bytes, split into chunk rows of PAYLOAD_CHUNK_BYTES (every
 * row fits TiDB's 6 MiB entry limit and MariaDB's 16 MiB default packet), with
 * the users who uploaded or published it. Two implementations (MySQL family,
 * SQLite) satisfy it.
 */

/** Chunk size: every chunk but the last holds exactly this many bytes, so a byte range maps to chunk numbers. */
export const PAYLOAD_CHUNK_BYTES = 1024 * 1024;

/**
 * Kinds of stored payloads: a KV cache converts to its JSON document; a file with extra tensors only downloads;
 * an alignment matrix (one 2-D tensor W, see alignment/matrix-file.ts) is only read by the alignment registry.
 */
export type PayloadKind = "kv-cache" | "safetensors" | "alignment-matrix";

export interface PayloadInfo {
  digest: string;
  size: number;
  chunkCount: number;
  kind: PayloadKind;
  /** JSON text: tensor name → {dtype, shape} */
  tensors: string;
  /** The key its chunks are stored under: the digest, or the id of the upload that wrote them. */
  chunkKey: string;
  /** The whole payload, when it was read together with its info (`infoWithBytes`). */
  bytes?: Uint8Array;
}

/** A payload row as the tables hold it: the kind as text, no chunk key when the chunks are under the digest. */
export const asInfo = (row: Omit<PayloadInfo, "kind" | "chunkKey"> & { kind: string; chunkKey: string | null }): PayloadInfo => ({
  ...row,
  kind: row.kind as PayloadKind,
  chunkKey: row.chunkKey ?? row.digest,
});

export interface NewPayload {
  digest: string;
  kind: PayloadKind;
  tensors: string;
  bytes: Uint8Array;
  ownerId: number;
}

export interface FinishedUpload {
  uploadId: string;
  digest: string;
  size: number;
  chunkCount: number;
  kind: PayloadKind;
  tensors: string;
  ownerId: number;
}

export interface PayloadStore {
  /** Stores a payload held in memory once (chunked) and records its owner. */
  put(payload: NewPayload): Promise<void>;
  info(digest: string): Promise<PayloadInfo | null>;
  /**
   * The info, with `bytes` when the payload is one chunk of at most `maxBytes`
   * (a delivery's info and data in one query instead of two).
   */
  infoWithBytes(digest: string, maxBytes: number): Promise<PayloadInfo | null>;
  /** The whole payload in memory: only for payloads known to be small. */
  read(digest: string): Promise<Uint8Array | null>;
  /** Chunks fromSeq..toSeq (inclusive) under a chunk key, in order; throws when one is missing. */
  readChunks(chunkKey: string, fromSeq: number, toSeq: number): Promise<Uint8Array[]>;
  /** Whether the user uploaded or published this payload. */
  isOwner(digest: string, userId: number): Promise<boolean>;

  /** Starts a streamed upload; its chunks are written under the returned id until the digest is known. */
  beginUpload(userId: number): Promise<string>;
  writeUploadChunk(uploadId: string, seq: number, data: Uint8Array): Promise<void>;
  /**
   * Makes a completed upload a payload: its chunks become the payload's, or,
   * when the digest is already stored, they are dropped (deduplication). The
   * uploader becomes an owner either way.
   */
  finishUpload(upload: FinishedUpload): Promise<{ created: boolean }>;
  /** Drops an unfinished upload and its chunks (client went away, invalid file). */
  abortUpload(uploadId: string): Promise<void>;
  /** Drops uploads started before `before` that never finished (a crash mid-upload); returns how many. */
  purgeStaleUploads(before: Date): Promise<number>;
}

/** Chunks deleted per statement, so one statement never carries hundreds of MiB (TiDB transaction size limit). */
export const CHUNK_DELETE_BATCH = 64;

/** Splits a payload held in memory into store chunks (views, no copies). */
export function* chunksOf(bytes: Uint8Array, size = PAYLOAD_CHUNK_BYTES): Generator<{ seq: number; data: Uint8Array }> {
  for (let offset = 0, seq = 0; offset < bytes.length || seq === 0; offset += size, seq++) {
    yield { seq, data: bytes.subarray(offset, Math.min(bytes.length, offset + size)) };
    if (bytes.length === 0) return;
  }
}

export function concatChunks(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** The chunk rows fromSeq..toSeq must all be there, in order. */
export function checkChunkRun(rows: { seq: number }[], fromSeq: number, toSeq: number, chunkKey: string): void {
  const expected = toSeq - fromSeq + 1;
  if (rows.length !== expected || rows.some((row, i) => row.seq !== fromSeq + i)) {
    throw new Error(`payload ${chunkKey}: chunks ${fromSeq}..${toSeq} are incomplete (${rows.length} of ${expected} found)`);
  }
}

export const asBuffer = (data: Uint8Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);
