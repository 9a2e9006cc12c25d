/** Where entitled users download payloads, relative to the service's base URL (behind the main app's proxy: its prefix). */
export const memoryPayloadUrl = (memoryId: number) => `/api/v1/memory/${memoryId}/payload`;

/** A chain's payload for one paid use: the transaction is the receipt. */
export const chainPayloadUrl = (chainId: number, transactionId: number) =>
  `/api/v1/reasoning-chain/${chainId}/payload?transaction_id=${transactionId}`;
