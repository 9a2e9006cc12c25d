import type { RequestSpec, Workload } from "./load.js";
import { FIRST_BUYER, smallKvCache } from "./market.js";

/**
 * The requests of each scenario. Paths and bodies are the REST API's; the
 * baseline server answers the same paths, so one workload drives both.
 */
export interface MarketRefs {
  /** read,trade key of user 2 (browse, publish) */
  readerKey: string;
  /** admin key of user 1: purchases and uses act for buyers through X-User-Id, as the main app does */
  adminKey: string;
  listingIds: number[];
  chainIds: number[];
  /** the typed client's `memory.browse` request (path with its batched, superjson-encoded input) */
  trpcBrowse: RequestSpec;
}

/** The typical browse: one memory type, a price cap, the default page. */
export const BROWSE_PATH = "/api/v1/memory/browse?memory_type=kv_cache&max_price=50&limit=20";
export const BROWSE_INPUT = { memoryType: "kv_cache", maxPrice: 50, limit: 20 } as const;

/** Read-heavy traffic reads a handful of popular pages. */
const MIXED_BROWSE_PATHS = [
  BROWSE_PATH,
  "/api/v1/memory/browse?memory_type=kv_cache&max_price=50&limit=20&offset=20",
  "/api/v1/memory/browse?memory_type=long_term_memory&limit=20",
  "/api/v1/memory/browse?source_model=llama-3-8b&limit=20",
  "/api/v1/memory/browse?limit=20",
];

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

export function healthWorkload(): Workload {
  return { fixed: true, next: () => ({ method: "GET", path: "/health" }) };
}

export function restBrowseWorkload(refs: MarketRefs): Workload {
  return { fixed: true, next: () => ({ method: "GET", path: BROWSE_PATH, headers: bearer(refs.readerKey) }) };
}

export function trpcBrowseWorkload(refs: MarketRefs): Workload {
  return { fixed: true, next: () => refs.trpcBrowse };
}

/** Each publish sends a payload differing in one value: a new digest, a real payload write. */
export function publishWorkload(refs: MarketRefs, counter: { n: number }): Workload {
  const template = JSON.stringify({ memory_type: "kv_cache", kv_cache_data: smallKvCache(0), price: 9.99, description: "bench publish" });
  const marker = '"keys":[[[[0,';
  if (!template.includes(marker)) throw new Error("publish template: marker not found");
  return {
    next: () => ({
      method: "POST",
      path: "/api/v1/memory/publish",
      headers: bearer(refs.readerKey),
      body: template.replace(marker, `"keys":[[[[${++counter.n},`),
    }),
  };
}

/** Every purchase is a new (listing, buyer) pair: the counter runs on across runs and never repeats one. */
export function purchaseSpec(refs: MarketRefs, counter: { n: number }): RequestSpec {
  const i = counter.n++;
  const memoryId = refs.listingIds[i % refs.listingIds.length]!;
  const buyer = FIRST_BUYER + Math.floor(i / refs.listingIds.length);
  return {
    method: "POST",
    path: "/api/v1/memory/purchase",
    headers: { ...bearer(refs.adminKey), "x-user-id": String(buyer) },
    body: JSON.stringify({ memory_id: memoryId, target_model: "llama-3-8b" }),
  };
}

export function purchaseWorkload(refs: MarketRefs, counter: { n: number }): Workload {
  return { next: () => purchaseSpec(refs, counter) };
}

export function chainUseSpec(refs: MarketRefs, i: number): RequestSpec {
  return {
    method: "POST",
    path: "/api/v1/reasoning-chain/use",
    headers: { ...bearer(refs.adminKey), "x-user-id": String(FIRST_BUYER + (i % 97)) },
    body: JSON.stringify({ chain_id: refs.chainIds[i % refs.chainIds.length], input_data: { question: "2+2?" }, target_model: "llama-3-8b" }),
  };
}

export function chainUseWorkload(refs: MarketRefs): Workload {
  return { next: (i) => chainUseSpec(refs, i) };
}

/** 90% browse over popular pages, 10% trades (purchases and chain uses alternating). */
export function mixedWorkload(refs: MarketRefs, counter: { n: number }): Workload {
  return {
    next: (i) => {
      if (i % 10 !== 9) return { method: "GET", path: MIXED_BROWSE_PATHS[i % MIXED_BROWSE_PATHS.length]!, headers: bearer(refs.readerKey) };
      return (i / 10) % 2 < 1 ? purchaseSpec(refs, counter) : chainUseSpec(refs, i);
    },
  };
}
