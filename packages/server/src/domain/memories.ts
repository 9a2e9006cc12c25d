import { toCents } from "@memory-exchange/shared";
import type {
  browseMemoriesInput,
  browseMemoriesOutput,
  getMemoryInput,
  historyInput,
  historyOutput,
  memoryDetailSchema,
  publishMemoryInput,
  publishMemoryOutput,
  purchaseMemoryInput,
  purchaseMemoryOutput,
} from "@memory-exchange/shared";
import type { z } from "zod";
import { DomainError, notFound } from "../errors.js";
import { recordTrade } from "../http/metrics.js";
import type { Store } from "../store/store.js";
import type { AlignmentRuntime } from "../alignment/alignment-runtime.js";
import { alignedPayloadUrl, deliverKvCache } from "./alignment.js";
import { decodeCursor, nextCursor } from "./cursor.js";
import { priceRangeCents } from "./filters.js";
import { memoryPayloadUrl } from "../payloads/payload-urls.js";
import type { ExchangeRow } from "../store/store.js";
import {
  DEFAULT_INLINE_PAYLOAD_BYTES,
  inlineKvCache,
  publishedPayload,
  recordPublishedPayload,
  type PayloadLocation,
} from "./kv-cache-payloads.js";
import { toListing, toTransaction } from "./presenters.js";

type Out<T extends z.ZodType> = z.output<T>;

const payloadLocation = (row: ExchangeRow): PayloadLocation => ({
  payloadDigest: row.payloadDigest,
  payloadSize: row.payloadSize,
  inlineJson: row.kvCacheData,
});

export async function publishMemory(
  store: Store,
  sellerId: number,
  input: Out<typeof publishMemoryInput>,
): Promise<Out<typeof publishMemoryOutput>> {
  const payload = await publishedPayload(store, sellerId, { data: input.kvCacheData, ref: input.kvCacheRef, refPath: "kvCacheRef" });
  const memoryId = await store.insertListing(
    {
      sellerId,
      memoryType: input.memoryType,
      sourceModel: payload.sourceModel,
      priceCents: toCents(input.price)!,
      description: input.description ?? null,
      tokenCount: payload.tokenCount,
      contextLength: payload.contextLength,
      payloadDigest: payload.digest,
      payloadSize: payload.size,
    },
    payload.toStore,
  );
  recordPublishedPayload(payload);
  return { memoryId };
}

export async function browseMemories(store: Store, input: Out<typeof browseMemoriesInput>): Promise<Out<typeof browseMemoriesOutput>> {
  const rows = await store.browseListings({
    memoryType: input.memoryType,
    sourceModel: input.sourceModel,
    ...priceRangeCents(input.minPrice, input.maxPrice),
    limit: input.limit,
    offset: input.offset,
    after: input.cursor ? decodeCursor(input.cursor) : undefined,
  });
  return { memories: rows.map(toListing), count: rows.length, nextCursor: nextCursor(rows, input.limit) };
}

/** Only the seller and the buyers of a listing ever receive its payload (inline below the limit, else by download). */
export async function getMemory(
  store: Store,
  userId: number,
  input: Out<typeof getMemoryInput>,
  inlineLimitBytes = DEFAULT_INLINE_PAYLOAD_BYTES,
): Promise<Out<typeof memoryDetailSchema>> {
  const row = await store.findListing(input.memoryId);
  if (!row) throw notFound(`memory ${input.memoryId}`);
  const entitled = row.sellerId === userId || (await store.findPurchase(row, userId)) !== null;
  const listing = toListing(row);
  if (!entitled) return { ...listing, entitled };
  const kvCacheData = await inlineKvCache(store, payloadLocation(row), inlineLimitBytes);
  return { ...listing, entitled, ...(kvCacheData ? { kvCacheData } : {}), payloadUrl: memoryPayloadUrl(row.id) };
}

/**
 * Buys a listing. A buyer holds at most one purchase per listing: a repeat
 * returns the first transaction and charges nothing; a race is settled by the
 * unique index (listing_id, buyer_id).
 */
export async function purchaseMemory(
  store: Store,
  aligner: AlignmentRuntime,
  buyerId: number,
  input: Out<typeof purchaseMemoryInput>,
  inlineLimitBytes = DEFAULT_INLINE_PAYLOAD_BYTES,
): Promise<Out<typeof purchaseMemoryOutput>> {
  const listing = await store.findListing(input.memoryId);
  if (!listing) throw notFound(`memory ${input.memoryId}`);
  if (listing.sellerId === buyerId) throw new DomainError("SELF_PURCHASE", "You cannot buy your own listing");

  let trade = await store.findPurchase(listing, buyerId);
  if (!trade && (listing.status !== "pending" || listing.buyerId !== 0))
    throw new DomainError("CONFLICT", `memory ${listing.id} is not for sale`);

  // Delivered (aligned) before the trade is recorded: an alignment that cannot run (ALIGNMENT_TOO_LARGE, OVERLOADED) records nothing.
  const item = { location: payloadLocation(listing), sourceModel: listing.sourceModel };
  const delivery = await deliverKvCache(store, aligner, item, input.targetModel, inlineLimitBytes);

  let newPurchase = false;
  if (!trade) {
    ({ trade, created: newPurchase } = await store.recordPurchase({ listing, buyerId, targetModel: input.targetModel }));
    if (newPurchase) recordTrade("memory_purchase", trade.priceCents);
  }

  return {
    transactionId: trade.id,
    newPurchase,
    memory: { ...toListing(listing), ...(delivery.document ? { kvCacheData: delivery.document } : {}) },
    payloadUrl: alignedPayloadUrl(memoryPayloadUrl(listing.id), delivery.alignedDigest),
    alignment: delivery.alignment,
  };
}

export async function memoryHistory(store: Store, userId: number, input: Out<typeof historyInput>): Promise<Out<typeof historyOutput>> {
  const rows = await store.listTrades(userId, input.role, input.limit, input.offset);
  return { transactions: rows.map((row) => toTransaction(row, userId)), count: rows.length };
}
