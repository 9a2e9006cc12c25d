import { createHash } from "node:crypto";
import { readSafetensorsHeader, safetensorsTotalSize, type SafetensorsHeader, type UploadedPayload } from "@memory-exchange/shared";
import { DomainError } from "../errors.js";
import type { PayloadKind, PayloadStore } from "../store/payload-store.js";
import { ChunkWriter } from "./chunk-writer.js";
import { FiniteScanner, TensorDataError } from "./finite-scanner.js";
import { MATRIX_PAYLOAD_KIND, matrixFromHeader, matrixTensors } from "../alignment/matrix-file.js";
import { kvCacheFromHeader, type TensorInfo } from "./kv-cache-header.js";

/** Largest safetensors header accepted on upload: KV-cache headers are a few KiB; this bounds what is buffered before validation. */
export const UPLOAD_MAX_HEADER_BYTES = 16 * 1024 * 1024;

export interface UploadOptions {
  ownerId: number;
  maxBytes: number;
  /** Content-Length, when the client sent one. */
  declaredLength?: number;
}

export interface ReceivedUpload extends UploadedPayload {
  /** false when the same bytes were already stored (the upload was deduplicated) */
  created: boolean;
}

const invalid = (path: string, message: string) => new DomainError("INVALID_INPUT", `Invalid safetensors upload: ${message}`, [{ path, message }]);
const tooLarge = (bytes: number, max: number) =>
  new DomainError("PAYLOAD_TOO_LARGE", `The payload is ${bytes} bytes, over the upload limit of ${max} bytes`, [
    { path: "body", message: `at most ${max} bytes` },
  ]);

function concat(pieces: Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

/** Buffers the first bytes of the body until the safetensors header parses; returns it with the bytes read so far. */
async function readHeader(
  body: AsyncIterator<Uint8Array>,
): Promise<{ header: SafetensorsHeader; prefix: Uint8Array } | { header: null; prefix: Uint8Array }> {
  const pieces: Uint8Array[] = [];
  let length = 0;
  let need = 8;
  for (;;) {
    while (length < need) {
      const next = await body.next();
      if (next.done) return { header: null, prefix: concat(pieces, length) };
      pieces.push(next.value);
      length += next.value.length;
    }
    const prefix = concat(pieces, length);
    pieces.length = 0;
    pieces.push(prefix);
    const parsed = readSafetensorsHeader(prefix);
    if (parsed.ok) {
      const { ok: _ok, ...header } = parsed;
      return { header, prefix };
    }
    if ("error" in parsed) throw invalid("header", parsed.error);
    if (parsed.needBytes > 8 + UPLOAD_MAX_HEADER_BYTES) {
      throw invalid("header", `the header is ${parsed.needBytes - 8} bytes; uploads accept at most ${UPLOAD_MAX_HEADER_BYTES}`);
    }
    need = parsed.needBytes;
  }
}

/**
 * Receives a safetensors KV-cache file as it streams in: the header is
 * validated as soon as its bytes arrive (before anything is written), then
 * every byte is hashed, checked for NaN/Infinity and written to the store in
 * 1 MiB chunks under a temporary upload id; at the end the chunks become the
 * payload of that digest, or are dropped if it is already stored. Memory stays
 * at a few MiB whatever the size. Any failure, including the client going
 * away, drops what was written.
 */
export async function receiveUpload(
  payloads: PayloadStore,
  body: AsyncIterable<Uint8Array>,
  options: UploadOptions,
): Promise<ReceivedUpload> {
  const { maxBytes, declaredLength } = options;
  if (declaredLength !== undefined && declaredLength > maxBytes) throw tooLarge(declaredLength, maxBytes);

  const iterator = body[Symbol.asyncIterator]();
  const { header, prefix } = await readHeader(iterator);
  if (!header) {
    throw invalid("body", prefix.length === 0 ? "the body is empty; send a safetensors file" : `the body ends inside the safetensors header (${prefix.length} bytes)`);
  }
  const total = safetensorsTotalSize(header);
  if (total > maxBytes) throw tooLarge(total, maxBytes);
  if (declaredLength !== undefined && declaredLength !== total) {
    throw invalid("body", `Content-Length is ${declaredLength} bytes but the header describes a ${total}-byte file`);
  }
  const described = kvCacheFromHeader(header);
  let kind: PayloadKind;
  let tensors: Record<string, TensorInfo>;
  if (described.ok) {
    kind = described.summary.hasExtraTensors ? "safetensors" : "kv-cache";
    tensors = described.summary.tensors;
  } else {
    // The other kind of upload: an alignment matrix file (one 2-D tensor W), registered with POST /api/v1/alignment/matrices.
    const matrix = matrixFromHeader(header);
    if (!matrix.ok) {
      const summary = described.issues.map((i) => `${i.path}: ${i.message}`).join("; ");
      throw new DomainError("INVALID_INPUT", `Invalid safetensors upload: ${summary}`, described.issues);
    }
    kind = MATRIX_PAYLOAD_KIND;
    tensors = matrixTensors(matrix.matrix);
  }

  const uploadId = await payloads.beginUpload(options.ownerId);
  const hash = createHash("sha256");
  const scanner = new FiniteScanner(header);
  const writer = new ChunkWriter((seq, data) => payloads.writeUploadChunk(uploadId, seq, data));
  let received = 0;
  const accept = async (bytes: Uint8Array, dataOffset: number) => {
    received += bytes.length;
    if (received > total) throw invalid("body", `the body is longer than the ${total} bytes the header describes`);
    scanner.push(bytes.subarray(dataOffset));
    hash.update(bytes);
    await writer.write(bytes);
  };
  try {
    await accept(prefix, header.dataStart);
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) await accept(next.value, 0);
    scanner.finish();
    await writer.end();
    const digest = hash.digest("hex");
    const { created } = await payloads.finishUpload({
      uploadId,
      digest,
      size: total,
      chunkCount: writer.chunkCount,
      kind,
      tensors: JSON.stringify(tensors),
      ownerId: options.ownerId,
    });
    return { digest, size: total, tensors, created };
  } catch (error) {
    await writer.settle();
    await payloads.abortUpload(uploadId).catch(() => undefined);
    if (error instanceof TensorDataError) throw invalid(error.path, error.message);
    throw error;
  }
}
