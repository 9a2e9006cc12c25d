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
import { alignForTarget } from "./alignment.js";
import { decodeCursor, nextCursor } from "./cursor.js";
import { priceRangeCents } from "./filters.js";
import { describeKvCache, loadKvCache, storeKvCache } from "./kv-cache-payloads.js";
import { toListing, toTransaction } from "./presenters.js";

type Out<T extends z.ZodType> = z.output<T>;

export async function publishMemory(
  store: Store,
  sellerId: number,
  input: Out<typeof publishMemoryInput>,
): Promise<Out<typeof publishMemoryOutput>> {
  const payload = input.kvCacheData;
  const stored = await storeKvCache(store, payload, sellerId);
  const memoryId = await store.insertListing({
    sellerId,
    memoryType: input.memoryType,
    sourceModel: payload.sourceModel,
    priceCents: toCents(input.price)!,
    description: input.description ?? null,
    ...describeKvCache(payload),
    payloadDigest: stored.digest,
    payloadSize: stored.size,
  });
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

/** Only the seller and the buyers of a listing ever receive its payload. */
export async function getMemory(store: Store, userId: number, input: Out<typeof getMemoryInput>): Promise<Out<typeof memoryDetailSchema>> {
  const row = await store.findListing(input.memoryId);
  if (!row) throw notFound(`memory ${input.memoryId}`);
  const entitled = row.sellerId === userId || (await store.findPurchase(row.id, userId)) !== null;
  const listing = toListing(row);
  if (!entitled) return { ...listing, entitled };
  const kvCacheData = await loadKvCache(store, { payloadDigest: row.payloadDigest, inlineJson: row.kvCacheData });
  return { ...listing, entitled, kvCacheData };
}

/**
 * Buys a listing. A buyer holds at most one purchase per listing: a repeat
 * returns the first transaction and charges nothing; a race is settled by the
 * unique index (listing_id, buyer_id).
 */
export async function purchaseMemory(
  store: Store,
  buyerId: number,
  input: Out<typeof purchaseMemoryInput>,
): Promise<Out<typeof purchaseMemoryOutput>> {
  const listing = await store.findListing(input.memoryId);
  if (!listing) throw notFound(`memory ${input.memoryId}`);
  if (listing.sellerId === buyerId) throw new DomainError("SELF_PURCHASE", "You cannot buy your own listing");

  let trade = await store.findPurchase(listing.id, buyerId);
  let newPurchase = false;
  if (!trade) {
    if (listing.status !== "pending" || listing.buyerId !== 0)
      throw new DomainError("CONFLICT", `memory ${listing.id} is not for sale`);
    ({ trade, created: newPurchase } = await store.recordPurchase({ listing, buyerId, targetModel: input.targetModel }));
    if (newPurchase) recordTrade("memory_purchase", trade.priceCents);
  }

  const published = await loadKvCache(store, { payloadDigest: listing.payloadDigest, inlineJson: listing.kvCacheData });
  const { document, alignment } = await alignForTarget(published, input.targetModel);
  return {
    transactionId: trade.id,
    newPurchase,
    memory: { ...toListing(listing), kvCacheData: document },
    alignment,
  };
}

export async function memoryHistory(store: Store, userId: number, input: Out<typeof historyInput>): Promise<Out<typeof historyOutput>> {
  const rows = await store.listTrades(userId, input.role, input.limit, input.offset);
  return { transactions: rows.map((row) => toTransaction(row, userId)), count: rows.length };
}
