/**
 * Reading and writing the large payloads alignment works on without holding
 * the event loop: SQLite calls are synchronous, so a 32 MiB payload read or
 * written in one statement would stall every other request for its duration.
 * These go a chunk or two at a time and yield to the event loop in between
 * (harmless on MySQL, where each call is asynchronous anyway).
 */
import { chunksOf, type PayloadInfo, type PayloadKind, type PayloadStore } from "../store/payload-store.js";

/** Chunks (1 MiB each) read per statement. */
const CHUNKS_PER_READ = 2;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A stored payload's bytes, read a few chunks at a time (or as read with its info). */
export async function readPayloadYielding(payloads: PayloadStore, info: PayloadInfo): Promise<Uint8Array> {
  if (info.bytes) {
    if (info.bytes.length !== info.size) throw new Error(`payload ${info.digest}: its chunk holds ${info.bytes.length} of its ${info.size} bytes`);
    return info.bytes;
  }
  const out = new Uint8Array(info.size);
  let offset = 0;
  for (let from = 0; from < info.chunkCount; from += CHUNKS_PER_READ) {
    const to = Math.min(info.chunkCount - 1, from + CHUNKS_PER_READ - 1);
    for (const chunk of await payloads.readChunks(info.chunkKey, from, to)) {
      if (offset + chunk.length > info.size) throw new Error(`payload ${info.digest}: chunks hold more than its ${info.size} bytes`);
      out.set(chunk, offset);
      offset += chunk.length;
    }
    if (to < info.chunkCount - 1) await yieldToLoop();
  }
  if (offset !== info.size) throw new Error(`payload ${info.digest}: chunks hold ${offset} of its ${info.size} bytes`);
  return out;
}

export interface DerivedPayload {
  digest: string;
  kind: PayloadKind;
  tensors: string;
  bytes: Uint8Array;
  ownerId: number;
}

/**
 * Stores a payload computed in memory through the streamed-upload path (its
 * chunks under a temporary key, then one small statement makes it the
 * payload), one chunk per statement. Already stored: nothing is written.
 */
export async function putPayloadYielding(payloads: PayloadStore, payload: DerivedPayload): Promise<void> {
  if (await payloads.info(payload.digest)) return;
  const uploadId = await payloads.beginUpload(payload.ownerId);
  try {
    let chunkCount = 0;
    for (const { seq, data } of chunksOf(payload.bytes)) {
      if (seq > 0) await yieldToLoop();
      await payloads.writeUploadChunk(uploadId, seq, data);
      chunkCount++;
    }
    await payloads.finishUpload({
      uploadId,
      digest: payload.digest,
      size: payload.bytes.length,
      chunkCount,
      kind: payload.kind,
      tensors: payload.tensors,
      ownerId: payload.ownerId,
    });
  } catch (error) {
    await payloads.abortUpload(uploadId).catch(() => undefined);
    throw error;
  }
}
