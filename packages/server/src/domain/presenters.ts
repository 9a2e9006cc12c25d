import { fromCents, type MemoryListing, type ReasoningChain, type Transaction } from "@memory-exchange/shared";
import type { ChainSummary, ExchangeSummary } from "../store/store.js";

/** Store rows to API objects (camelCase; money as numbers with at most 2 decimals). */

export function toListing(row: ExchangeSummary): MemoryListing {
  return {
    id: row.id,
    sellerId: row.sellerId,
    memoryType: row.memoryType,
    sourceModel: row.sourceModel,
    description: row.description,
    price: fromCents(row.priceCents),
    status: row.status === "pending" ? "available" : row.status === "completed" ? "sold" : "withdrawn",
    tokenCount: row.tokenCount,
    contextLength: row.contextLength,
    qualityScore: row.qualityScore === null ? null : fromCents(row.qualityScore),
    payloadSize: row.payloadSize,
    payloadDigest: row.payloadDigest,
    createdAt: row.createdAt,
  };
}

export function toTransaction(row: ExchangeSummary, viewerId: number): Transaction {
  return {
    id: row.id,
    role: row.buyerId === viewerId ? "buyer" : "seller",
    // A new trade names its listing; the older code's completed row was the listing itself.
    memoryId: row.chainId !== null ? null : (row.listingId ?? (row.memoryType === "reasoning_chain" ? null : row.id)),
    chainId: row.chainId,
    memoryType: row.memoryType,
    sellerId: row.sellerId,
    buyerId: row.buyerId,
    price: fromCents(row.priceCents),
    sourceModel: row.sourceModel,
    targetModel: row.targetModel,
    status: row.status,
    createdAt: row.createdAt,
  };
}

function parseJsonText(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function toChain(row: ChainSummary): ReasoningChain {
  return {
    id: row.id,
    creatorId: row.creatorId,
    chainName: row.chainName,
    description: row.description,
    category: row.category,
    sourceModel: row.sourceModel,
    stepCount: row.stepCount,
    pricePerUse: fromCents(row.pricePerUseCents),
    usageCount: row.usageCount,
    totalRevenue: fromCents(row.totalRevenueCents),
    avgQuality: row.avgQuality === null ? null : fromCents(row.avgQuality),
    reviewCount: row.reviewCount,
    inputExample: parseJsonText(row.inputExample),
    outputExample: parseJsonText(row.outputExample),
    status: row.status,
    payloadSize: row.payloadSize,
    payloadDigest: row.payloadDigest,
    createdAt: row.createdAt,
  };
}
