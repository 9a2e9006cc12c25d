import { fromCents, type Stats } from "@memory-exchange/shared";
import type { Store } from "../store/store.js";

/** Marketplace totals; every figure is an aggregate of stored rows, so it always matches the trades. */
export async function marketStats(store: Store): Promise<Stats> {
  const s = await store.stats();
  return {
    totalMemories: s.totalMemories,
    availableMemories: s.availableMemories,
    totalTransactions: s.totalTransactions,
    memoryPurchases: s.totalTransactions - s.chainUses,
    chainUses: s.chainUses,
    totalReasoningChains: s.totalReasoningChains,
    activeReasoningChains: s.activeReasoningChains,
    totalVolume: fromCents(s.totalVolumeCents),
  };
}
