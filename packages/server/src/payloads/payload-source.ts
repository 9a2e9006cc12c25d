import { sha256Hex } from "../domain/kv-cache-payloads.js";
import { PAYLOAD_CHUNK_BYTES, type PayloadInfo, type PayloadStore } from "../store/payload-store.js";

/** Chunks fetched per query while streaming: a few MiB in memory per download. */
const CHUNKS_PER_READ = 4;

/** A payload's bytes, readable by byte range without holding the whole file. */
export interface PayloadSource {
  digest: string;
  size: number;
  /** Bytes start..end (inclusive), in order. */
  read(start: number, end: number): AsyncGenerator<Uint8Array>;
}

/** A payload in the chunk store: reads only the chunks a range covers, a few at a time, as the consumer pulls. */
export function storedPayloadSource(payloads: PayloadStore, info: PayloadInfo): PayloadSource {
  const lastSeq = info.chunkCount - 1;
  const chunkLength = (seq: number) => (seq < lastSeq ? PAYLOAD_CHUNK_BYTES : info.size - lastSeq * PAYLOAD_CHUNK_BYTES);
  return {
    digest: info.digest,
    size: info.size,
    async *read(start, end) {
      const firstSeq = Math.floor(start / PAYLOAD_CHUNK_BYTES);
      const endSeq = Math.floor(end / PAYLOAD_CHUNK_BYTES);
      for (let from = firstSeq; from <= endSeq; from += CHUNKS_PER_READ) {
        const to = Math.min(endSeq, from + CHUNKS_PER_READ - 1);
        const chunks = await payloads.readChunks(info.chunkKey, from, to);
        for (let i = 0; i < chunks.length; i++) {
          const seq = from + i;
          const chunk = chunks[i]!;
          // Offsets are computed from the fixed chunk size, so a chunk of another length is corruption.
          if (chunk.length !== chunkLength(seq)) throw new Error(`payload ${info.digest}: chunk ${seq} holds ${chunk.length} bytes, expected ${chunkLength(seq)}`);
          const base = seq * PAYLOAD_CHUNK_BYTES;
          const lo = Math.max(start, base) - base;
          const hi = Math.min(end + 1, base + chunk.length) - base;
          yield lo === 0 && hi === chunk.length ? chunk : chunk.subarray(lo, hi);
        }
      }
    },
  };
}

/** A payload built in memory (the older code's inline JSON, converted on the fly). */
export function inMemoryPayloadSource(bytes: Uint8Array): PayloadSource {
  return {
    digest: sha256Hex(bytes),
    size: bytes.length,
    async *read(start, end) {
      for (let at = start; at <= end; at += PAYLOAD_CHUNK_BYTES) yield bytes.subarray(at, Math.min(end + 1, at + PAYLOAD_CHUNK_BYTES));
    },
  };
}
