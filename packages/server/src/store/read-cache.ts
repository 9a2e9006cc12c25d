import { ExpiringCache } from "./expiring-cache.js";
import type { Store } from "./store.js";

/**
 * A short-lived cache in front of the store's hottest reads: browse pages
 * (listings, chains) and the market stats. Agents poll the same few pages;
 * without it each poll is a database query.
 *
 * Freshness rules:
 * - every write through this store (this process) drops the entries it can
 *   change before it returns, so a write is visible to the next read at once;
 * - a read that raced a write never stores its (possibly older) result;
 * - writes by other processes (another instance, the CLI, the older code)
 *   become visible within `ttlMs`.
 *
 * Invalidation per write (what each one changes):
 *   insertListing  → listing pages, stats        recordPurchase → stats
 *   insertChain    → chain pages, stats          recordChainUse → chain pages, stats
 *   API keys, payload store                      → nothing cached
 *   any other (new) method                       → everything (safe default)
 * A purchase adds a trade row, never changes a listing row, so listing pages stay.
 */
type Group = "listings" | "chains" | "stats";
export type ReadCacheGroup = Group;

/**
 * The store behind a read cache (the store itself when it has none): its
 * reads always go to the database. A response cache in front of the store
 * renders its entries from it, so what it serves is never older than one TTL
 * either. (An AsyncLocalStorage flag did this before; in Node 20 the first
 * `run` turns on promise hooks for every promise of the process, for good.)
 */
export function uncachedStore(store: Store): Store {
  return underlying.get(store) ?? store;
}
const underlying = new WeakMap<Store, Store>();

const groupsOf = new WeakMap<Store, Record<Group, { generation: number }>>();

/** True when `store` is wrapped by a read cache (`withReadCache` with a TTL). */
export function hasReadCache(store: Store): boolean {
  return groupsOf.has(store);
}

/** The group's invalidation counter (bumped by every write through the store), or undefined when the store is not cached. */
export function readCacheGeneration(store: Store, group: Group): number | undefined {
  return groupsOf.get(store)?.[group].generation;
}

const CACHED_READS = { browseListings: "listings", browseChains: "chains", stats: "stats" } as const satisfies Partial<Record<keyof Store, Group>>;

/** Reads passed through untouched, and writes that change nothing cached. */
const UNCACHED = new Set<string>([
  "findListing",
  "findPurchase",
  "findChain",
  "listTrades",
  "findTrade",
  "insertApiKey",
  "findApiKeyByHash",
  "findApiKey",
  "listApiKeys",
  "revokeApiKey",
  "touchApiKeys",
  "ping",
  "isMigrated",
  "close",
]);

const WRITES: Record<string, Group[]> = {
  insertListing: ["listings", "stats"],
  recordPurchase: ["stats"],
  insertChain: ["chains", "stats"],
  recordChainUse: ["chains", "stats"],
};
const ALL_GROUPS: Group[] = ["listings", "chains", "stats"];

export interface ReadCacheOptions {
  /** how long an entry serves reads; 0 disables the cache */
  ttlMs: number;
  /** entries per group; the oldest goes first */
  maxEntries?: number;
}

/** Wraps a store with the read cache (or returns it unchanged when `ttlMs` is 0). */
export function withReadCache(store: Store, options: ReadCacheOptions): Store {
  if (options.ttlMs <= 0) return store;
  const groups: Record<Group, ExpiringCache<unknown>> = {
    listings: new ExpiringCache(options.ttlMs, options.maxEntries ?? 1000),
    chains: new ExpiringCache(options.ttlMs, options.maxEntries ?? 1000),
    stats: new ExpiringCache(options.ttlMs, 1),
  };
  const cached = Object.create(null) as Record<string, unknown>;

  for (const name of Object.keys(store) as (keyof Store)[]) {
    const member = store[name];
    if (typeof member !== "function") {
      cached[name] = member;
      continue;
    }
    const method = member.bind(store) as (...args: unknown[]) => Promise<unknown>;
    const group = (CACHED_READS as Partial<Record<string, Group>>)[name];
    if (group) {
      const cache = groups[group];
      cached[name] = (...args: unknown[]) => cache.get(args.length ? JSON.stringify(args) : "", () => method(...args));
    } else if (UNCACHED.has(name)) {
      cached[name] = method;
    } else {
      const touched = WRITES[name] ?? ALL_GROUPS;
      cached[name] = async (...args: unknown[]) => {
        // Before and after: a read racing the write can neither keep an entry from before it
        // nor store one it read while the write was in flight.
        for (const g of touched) groups[g].invalidate();
        try {
          return await method(...args);
        } finally {
          for (const g of touched) groups[g].invalidate();
        }
      };
    }
  }
  groupsOf.set(cached as unknown as Store, groups);
  underlying.set(cached as unknown as Store, store);
  return cached as unknown as Store;
}
