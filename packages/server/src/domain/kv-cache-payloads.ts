import { createHash } from "node:crypto";
import {
  kvCacheToSafetensors,
  safetensorsToKvCache,
  type KvCacheDocument,
  type ParsedKvCache,
} from "@memory-exchange/shared";
import { DomainError } from "../errors.js";
import { recordPayloadBytes } from "../http/metrics.js";
import type { Store } from "../store/store.js";

export interface StoredPayload {
  digest: string;
  size: number;
}

export const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Stores a validated KV cache once, content-addressed by the SHA-256 of its canonical safetensors form. */
export async function storeKvCache(store: Store, payload: ParsedKvCache, ownerId: number): Promise<StoredPayload> {
  const bytes = kvCacheToSafetensors(payload);
  const digest = sha256Hex(bytes);
  const tensors = JSON.stringify({
    keys: { dtype: payload.keys.dtype, shape: payload.keys.shape },
    values: { dtype: payload.values.dtype, shape: payload.values.shape },
  });
  await store.putPayload({ digest, kind: "kv-cache", tensors, bytes, ownerId });
  recordPayloadBytes("in", bytes.length);
  return { digest, size: bytes.length };
}

/**
 * The payload exactly as it was published: from the payload store, or the
 * inline JSON text the older code wrote.
 */
export async function loadKvCache(
  store: Store,
  source: { payloadDigest: string | null; inlineJson: string | null },
): Promise<KvCacheDocument> {
  if (source.payloadDigest) {
    const bytes = await store.readPayload(source.payloadDigest);
    if (!bytes) throw new DomainError("INTERNAL", "Internal server error");
    recordPayloadBytes("out", bytes.length);
    return safetensorsToKvCache(bytes) as KvCacheDocument;
  }
  if (source.inlineJson) {
    try {
      const document = JSON.parse(source.inlineJson) as KvCacheDocument;
      recordPayloadBytes("out", Buffer.byteLength(source.inlineJson));
      return document;
    } catch {
      throw new DomainError("UNPROCESSABLE", "The stored payload of this item is not valid JSON");
    }
  }
  throw new DomainError("UNPROCESSABLE", "This item has no payload");
}

/** Token count as the older code recorded it: metadata first, else the token axis of the shape. */
export function describeKvCache(payload: ParsedKvCache): { tokenCount: number | null; contextLength: number | null } {
  const metadata = payload.rest.metadata as Record<string, unknown> | undefined;
  const int = (v: unknown) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= 2_147_483_647 ? v : null);
  const shape = payload.keys.shape;
  const tokenAxis = shape.length >= 2 ? (shape[shape.length - 2] ?? null) : null;
  const tokenCount = int(metadata?.tokenCount) ?? tokenAxis;
  const contextLength = int(metadata?.sequenceLength) ?? tokenCount;
  return { tokenCount, contextLength };
}
