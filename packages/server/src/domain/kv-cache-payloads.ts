import { createHash } from "node:crypto";
import {
  kvCacheToSafetensors,
  safetensorsToKvCache,
  type AlignmentReport,
  type KvCacheDocument,
  type ParsedKvCache,
} from "@memory-exchange/shared";
import { DomainError } from "../errors.js";
import { recordPayloadBytes } from "../http/metrics.js";
import { kvCacheFromHeader } from "../payloads/kv-cache-header.js";
import { readStoredHeader } from "../payloads/stored-header.js";
import { readPayloadYielding } from "../alignment/payload-io.js";
import type { NewPayload, PayloadInfo } from "../store/payload-store.js";
import type { Store } from "../store/store.js";

export interface StoredPayload {
  digest: string;
  size: number;
}

/** The payload a publish names, with the facts a listing or chain row records about it. */
export interface PublishedPayload extends StoredPayload {
  sourceModel: string;
  tokenCount: number | null;
  contextLength: number | null;
  /** Inline data, encoded but not stored yet: the listing or chain insert stores it, in one transaction. */
  toStore?: NewPayload;
}

/** MEMORY_EXCHANGE_INLINE_PAYLOAD_MB's default, for callers without a configuration. */
export const DEFAULT_INLINE_PAYLOAD_BYTES = 8 * 1024 * 1024;

export const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** A validated KV cache in its canonical safetensors form, content-addressed by its SHA-256, ready to store. */
export function encodeKvCache(payload: ParsedKvCache, ownerId: number): NewPayload {
  const bytes = kvCacheToSafetensors(payload);
  const tensors = JSON.stringify({
    keys: { dtype: payload.keys.dtype, shape: payload.keys.shape },
    values: { dtype: payload.values.dtype, shape: payload.values.shape },
  });
  return { digest: sha256Hex(bytes), kind: "kv-cache", tensors, bytes, ownerId };
}

/** Counts the inline data of a publish, once the insert that stored it has returned. */
export function recordPublishedPayload(payload: PublishedPayload): void {
  if (payload.toStore) recordPayloadBytes("in", payload.toStore.bytes.length);
}

/**
 * The payload a publish names: inline JSON (encoded here, stored by the
 * caller's insert as `toStore`), or `ref`, the digest of a payload this user
 * uploaded (or published) before. Another user's digest is answered exactly
 * like an unknown one, so a digest never reveals that someone else holds
 * those bytes.
 */
export async function publishedPayload(
  store: Store,
  ownerId: number,
  payload: { data?: ParsedKvCache; ref?: string; refPath: string },
): Promise<PublishedPayload> {
  if (payload.data) {
    const toStore = encodeKvCache(payload.data, ownerId);
    return { digest: toStore.digest, size: toStore.bytes.length, sourceModel: payload.data.sourceModel, ...describeKvCache(payload.data), toStore };
  }
  const digest = payload.ref!;
  const info = (await store.payloads.isOwner(digest, ownerId)) ? await store.payloads.info(digest) : null;
  if (!info) {
    const message = `no payload ${digest} was uploaded by you; upload it with PUT /api/v1/payloads first`;
    throw new DomainError("NOT_FOUND", `${payload.refPath}: ${message}`, [{ path: payload.refPath, message }]);
  }
  const described = kvCacheFromHeader(await readStoredHeader(store.payloads, info));
  if (!described.ok) throw new DomainError("UNPROCESSABLE", `${payload.refPath}: payload ${digest} is not a KV-cache file`);
  const { sourceModel, rest, tensors } = described.summary;
  return { digest, size: info.size, sourceModel, ...describeKvCache({ rest, keys: tensors.keys! }) };
}

/** Where an item's payload lives: the payload store (digest and size), or the older code's inline JSON. */
export interface PayloadLocation {
  payloadDigest: string | null;
  payloadSize: number | null;
  inlineJson: string | null;
}

/**
 * The payload exactly as it was published: from the payload store (`stored`,
 * its info), or the inline JSON text the older code wrote. Reads it whole:
 * callers check the size first.
 */
async function loadKvCache(store: Store, source: Pick<PayloadLocation, "inlineJson">, stored: PayloadInfo | null): Promise<KvCacheDocument> {
  if (stored) {
    const bytes = await readPayloadYielding(store.payloads, stored);
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

/**
 * The JSON document to answer inline, or null when it must be downloaded:
 * above the inline limit (`MEMORY_EXCHANGE_INLINE_PAYLOAD_MB`), or a file
 * whose extra tensors the JSON form cannot carry. `known`: the payload's
 * info when the caller has read it already (one query less).
 */
export async function inlineKvCache(
  store: Store,
  source: PayloadLocation,
  inlineLimitBytes: number,
  known?: PayloadInfo,
): Promise<KvCacheDocument | null> {
  let stored: PayloadInfo | null = null;
  if (source.payloadDigest) {
    stored = known ?? (await store.payloads.infoWithBytes(source.payloadDigest, inlineLimitBytes));
    if (!stored) throw new DomainError("INTERNAL", "Internal server error");
    if (stored.size > inlineLimitBytes || stored.kind !== "kv-cache") return null;
  } else if (source.inlineJson && Buffer.byteLength(source.inlineJson) > inlineLimitBytes) {
    return null;
  }
  return loadKvCache(store, source, stored);
}

/** The alignment report when the payload is not inline: it is delivered as published, by download. */
export function notInlinedAlignment(sourceModel: string | null, targetModel: string, payloadSize: number | null): AlignmentReport {
  const size = payloadSize === null ? "" : ` (${payloadSize} bytes)`;
  return {
    applied: false,
    reason: `the payload${size} is delivered as published by download from payloadUrl (it is above the inline limit or holds extra tensors)`,
    sourceModel,
    targetModel,
  };
}

/** Token count as the older code recorded it: metadata first, else the token axis of the shape. */
export function describeKvCache(payload: Pick<ParsedKvCache, "rest"> & { keys: { shape: number[] } }): {
  tokenCount: number | null;
  contextLength: number | null;
} {
  const metadata = payload.rest.metadata as Record<string, unknown> | undefined;
  const int = (v: unknown) => {
    // Metadata of an uploaded safetensors file holds strings.
    const n = typeof v === "string" && /^\d{1,10}$/.test(v) ? Number(v) : v;
    return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 && n <= 2_147_483_647 ? n : null;
  };
  const shape = payload.keys.shape;
  const tokenAxis = shape.length >= 2 ? (shape[shape.length - 2] ?? null) : null;
  const tokenCount = int(metadata?.tokenCount) ?? tokenAxis;
  const contextLength = int(metadata?.sequenceLength) ?? tokenCount;
  return { tokenCount, contextLength };
}
