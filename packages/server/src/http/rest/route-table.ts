import type { ProcedurePath } from "../../trpc/direct-call.js";

/** Where a route's procedure input comes from. */
export type InputSource = "body" | "query" | "path" | "none";

export interface RestRoute {
  /** OpenAPI operationId */
  operationId: string;
  method: "GET" | "POST";
  /** Fastify path under the REST base (`/memory/:id`); the base `/api/v1` is added at registration */
  path: string;
  /** the tRPC procedure the route calls, with its own input/output schemas */
  procedure: ProcedurePath;
  input: InputSource;
  /** success status (publishing creates a resource) */
  status: 200 | 201;
  tag: "memory" | "reasoning-chain" | "stats" | "alignment";
  summary: string;
  description?: string;
  /** extra REST names for an input field: `chain_type` → `category` */
  aliases?: Record<string, string>;
  /** path parameter → input field (`id` → `memoryId`) */
  params?: Record<string, string>;
  /** error statuses this route can answer besides the ones every authenticated route can */
  errors?: number[];
  /** a request body from the seed document, shown by /docs */
  example?: Record<string, unknown>;
  /** the seed's human `message` added to `data`, from the procedure's output */
  message?: (output: Record<string, unknown>) => string;
}

export const REST_BASE = "/api/v1";

/** Every REST route of DESIGN.md's table (health excepted: it lives beside /ready in build-server). */
export const REST_ROUTES: readonly RestRoute[] = [
  {
    operationId: "publishMemory",
    method: "POST",
    path: "/memory/publish",
    procedure: "memory.publish",
    input: "body",
    status: 201,
    tag: "memory",
    summary: "Publish a memory (KV-cache snapshot) for sale",
    errors: [413],
    example: {
      memory_type: "kv_cache",
      kv_cache_data: { sourceModel: "gpt-3.5-turbo", keys: [[0.1, 0.2]], values: [[0.3, 0.4]] },
      price: 9.99,
      description: "High-quality KV cache for GPT-3.5",
    },
    message: () => "Memory published successfully",
  },
  {
    operationId: "purchaseMemory",
    method: "POST",
    path: "/memory/purchase",
    procedure: "memory.purchase",
    input: "body",
    status: 200,
    tag: "memory",
    summary: "Buy a memory and receive its KV cache, aligned to target_model when a matrix exists",
    description:
      "A buyer buys a listing at most once: a repeat purchase returns the first transaction (`new_purchase: false`) and charges nothing.",
    errors: [404, 409, 422],
    example: { memory_id: 123, target_model: "gpt-4" },
    message: (out) => (out.newPurchase ? "Memory purchased successfully" : "Memory already purchased; returning the existing transaction"),
  },
  {
    operationId: "browseMemories",
    method: "GET",
    path: "/memory/browse",
    procedure: "memory.browse",
    input: "query",
    status: 200,
    tag: "memory",
    summary: "List memories for sale (newest first, never the payload)",
  },
  {
    operationId: "getMemoryHistory",
    method: "GET",
    path: "/memory/my-history",
    procedure: "memory.history",
    input: "query",
    status: 200,
    tag: "memory",
    summary: "The caller's trades as buyer and/or seller",
  },
  {
    operationId: "getMemory",
    method: "GET",
    path: "/memory/:id",
    procedure: "memory.get",
    input: "path",
    params: { id: "memoryId" },
    status: 200,
    tag: "memory",
    summary: "One listing; its kv_cache_data only for its seller and buyers (`entitled`)",
    errors: [404],
  },
  {
    operationId: "publishReasoningChain",
    method: "POST",
    path: "/reasoning-chain/publish",
    procedure: "reasoningChain.publish",
    input: "body",
    status: 201,
    tag: "reasoning-chain",
    summary: "Publish a reasoning chain, sold per use",
    errors: [413],
    example: {
      chain_name: "Financial Analysis Chain",
      description: "Reasoning chain for financial data analysis",
      category: "finance",
      kv_cache_snapshot: { sourceModel: "gpt-4", keys: [[0.1, 0.2]], values: [[0.3, 0.4]] },
      source_model: "gpt-4",
      price_per_use: 2.99,
    },
    message: () => "Reasoning chain published successfully",
  },
  {
    operationId: "useReasoningChain",
    method: "POST",
    path: "/reasoning-chain/use",
    procedure: "reasoningChain.use",
    input: "body",
    status: 200,
    tag: "reasoning-chain",
    summary: "Pay for one use of a reasoning chain and receive its KV-cache snapshot",
    description: "Each use records a transaction; the creator's own use is free.",
    errors: [404, 422],
    example: { chain_id: 456, input_data: { query: "Analyze Q4 revenue" }, target_model: "gpt-4" },
    message: () => "Reasoning chain used successfully",
  },
  {
    operationId: "browseReasoningChains",
    method: "GET",
    path: "/reasoning-chain/browse",
    procedure: "reasoningChain.browse",
    input: "query",
    aliases: { chain_type: "category" },
    status: 200,
    tag: "reasoning-chain",
    summary: "List active reasoning chains (newest first)",
  },
  {
    operationId: "getReasoningChain",
    method: "GET",
    path: "/reasoning-chain/:id",
    procedure: "reasoningChain.get",
    input: "path",
    params: { id: "chainId" },
    status: 200,
    tag: "reasoning-chain",
    summary: "One active reasoning chain (without its snapshot)",
    errors: [404],
  },
  {
    operationId: "getStats",
    method: "GET",
    path: "/stats",
    procedure: "stats.get",
    input: "none",
    status: 200,
    tag: "stats",
    summary: "Market statistics",
  },
  {
    operationId: "publishAlignmentMatrix",
    method: "POST",
    path: "/alignment/matrices",
    procedure: "alignment.publishMatrix",
    input: "body",
    status: 201,
    tag: "alignment",
    summary: "Register an alignment matrix W (source_dim × target_dim) for a source_model -> target_model pair",
    description:
      "`matrix` is a 2-D nested array, a compact tensor `{dtype, shape, data}`, or the digest of a safetensors file you uploaded " +
      "with `PUT /api/v1/payloads` holding one 2-D tensor named `w` or `matrix`. Purchases and chain uses whose `target_model` " +
      "differs from the payload's model apply the newest active matrix of the pair.",
    errors: [404, 413, 422],
    example: { source_model: "llama-3-8b", target_model: "gpt-4", matrix: [[1, 0, 0.5], [0, 1, 0.5]], version: "1.0.0" },
    message: () => "Alignment matrix registered",
  },
  {
    operationId: "listAlignmentMatrices",
    method: "GET",
    path: "/alignment/matrices",
    procedure: "alignment.list",
    input: "query",
    status: 200,
    tag: "alignment",
    summary: "Registered alignment matrices, newest first (never the matrix data)",
  },
  {
    operationId: "setAlignmentMatrixStatus",
    method: "POST",
    path: "/alignment/matrices/status",
    procedure: "alignment.setStatus",
    input: "body",
    status: 200,
    tag: "alignment",
    summary: "Activate or retire an alignment matrix (its publisher, or an admin key)",
    errors: [404],
    example: { matrix_id: 1, status: "inactive" },
  },
];
