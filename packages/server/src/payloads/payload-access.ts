import { analyzeKvCache, kvCacheToSafetensors, MAX_TENSOR_ELEMENTS } from "@memory-exchange/shared";
import { DomainError, notFound } from "../errors.js";
import type { Store } from "../store/store.js";
import { inMemoryPayloadSource, storedPayloadSource, type PayloadSource } from "./payload-source.js";

export type PayloadTarget = { kind: "memory"; memoryId: number } | { kind: "chain"; chainId: number; transactionId?: number };

/** Where an item's payload lives: the payload store, or the older code's inline JSON text. */
interface PayloadLocation {
  payloadDigest: string | null;
  inlineJson: string | null;
}

/**
 * Who may download a payload, the same rule as everywhere else: a memory's
 * seller and buyers; a chain's creator, or a user naming the transaction of
 * one of their own paid uses (chains are paid per use).
 */
export async function entitledPayloadLocation(store: Store, userId: number, target: PayloadTarget): Promise<PayloadLocation> {
  if (target.kind === "memory") {
    const listing = await store.findListing(target.memoryId);
    if (!listing) throw notFound(`memory ${target.memoryId}`);
    if (listing.sellerId !== userId && !(await store.findPurchase(listing, userId))) {
      throw new DomainError("FORBIDDEN", `Only the seller and the buyers of memory ${listing.id} may download its payload`);
    }
    return { payloadDigest: listing.payloadDigest, inlineJson: listing.kvCacheData };
  }
  const chain = await store.findChain(target.chainId);
  if (!chain) throw notFound(`reasoning chain ${target.chainId}`);
  if (chain.creatorId !== userId) {
    if (target.transactionId === undefined) {
      throw new DomainError(
        "FORBIDDEN",
        `Reasoning chains are paid per use: pass ?transaction_id= of your use of chain ${chain.id} to download its payload`,
      );
    }
    const trade = await store.findTrade(target.transactionId);
    if (!trade || trade.chainId !== chain.id || trade.buyerId !== userId) {
      throw new DomainError("FORBIDDEN", `Transaction ${target.transactionId} is not your use of reasoning chain ${chain.id}`);
    }
  }
  return { payloadDigest: chain.payloadDigest, inlineJson: chain.kvCacheSnapshot };
}

/** The bytes to download: the stored safetensors file, or the older code's inline JSON converted to the canonical form. */
export async function payloadSource(store: Store, location: PayloadLocation): Promise<PayloadSource> {
  if (location.payloadDigest) {
    const info = await store.payloads.info(location.payloadDigest);
    if (!info) throw new Error(`payload ${location.payloadDigest} is referenced but not stored`);
    return storedPayloadSource(store.payloads, info);
  }
  if (location.inlineJson) {
    let document: unknown;
    try {
      document = JSON.parse(location.inlineJson);
    } catch {
      throw new DomainError("UNPROCESSABLE", "The stored payload of this item is not valid JSON");
    }
    const analysis = analyzeKvCache(document, { maxElements: MAX_TENSOR_ELEMENTS });
    if (!analysis.ok) throw new DomainError("UNPROCESSABLE", "The stored payload of this item is not a valid KV cache; it cannot be converted to safetensors");
    return inMemoryPayloadSource(kvCacheToSafetensors(analysis.payload));
  }
  throw new DomainError("UNPROCESSABLE", "This item has no payload");
}
