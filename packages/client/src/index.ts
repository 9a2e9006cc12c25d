export { createMemoryExchangeClient, type MemoryExchangeClient, type MemoryExchangeClientOptions } from "./create-client.js";
export { MemoryExchangeError, isMemoryExchangeError } from "./errors.js";
export type { AppRouter, RouterInputs, RouterOutputs } from "@memory-exchange/server/router";
export {
  ERROR_CODES,
  ERROR_STATUS,
  MEMORY_TYPES,
  SCOPES,
  type AlignmentReport,
  type ApiKey,
  type EncodedTensor,
  type ErrorCode,
  type ErrorDetail,
  type JsonValue,
  type KvCacheDocument,
  type MemoryDetail,
  type MemoryListing,
  type MemoryType,
  type NestedTensor,
  type ReasoningChain,
  type Scope,
  type Stats,
  type TensorInput,
  type Transaction,
} from "@memory-exchange/shared";
