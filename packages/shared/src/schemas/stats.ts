import { z } from "zod";

export const statsOutput = z.object({
  /** listings ever published (not trades) */
  totalMemories: z.number().int(),
  /** listings currently for sale */
  availableMemories: z.number().int(),
  /** completed trades: memory purchases and reasoning-chain uses */
  totalTransactions: z.number().int(),
  memoryPurchases: z.number().int(),
  chainUses: z.number().int(),
  totalReasoningChains: z.number().int(),
  activeReasoningChains: z.number().int(),
  /** exact sum of the prices of all completed trades */
  totalVolume: z.number(),
});
export type Stats = z.infer<typeof statsOutput>;
