import { hasReadCache, readCacheGeneration, type ReadCacheGroup } from "../store/read-cache.js";
import type { Store } from "../store/store.js";

export interface RenderedResponse {
  status: number;
  body: string;
}

interface CachedResponse extends RenderedResponse {
  groups: readonly ReadCacheGroup[];
  generation: number;
  expiresAt: number;
}

/**
 * Rendered responses of reads whose answer is the same for every caller
 * (browse pages, stats: REST routes and batched tRPC queries), keyed by URL.
 * A hit skips the procedure call, validation, mapping and serialisation:
 * profiles of a warm browse spent ~75% of its CPU there. Freshness follows
 * the store's read cache: an entry dies with any write in this process to
 * one of the read-cache groups it was rendered from, and after one TTL;
 * misses must read the database directly (`uncachedStore`), so an entry is
 * never older than one TTL. Callers check authentication and scope on every
 * request, hit or miss.
 */
export class ResponseCache {
  private readonly entries = new Map<string, CachedResponse>();
  private readonly rendering = new Map<string, { result: Promise<RenderedResponse>; generation: number }>();

  /** True when the store has a read cache to follow (and the TTL is on). */
  readonly enabled: boolean;

  constructor(
    private readonly store: Store,
    private readonly ttlMs: number,
    private readonly maxEntries = 1000,
  ) {
    this.enabled = ttlMs > 0 && hasReadCache(store);
  }

  /** The state of the groups: the sum of their invalidation counters, which only grow, so any write changes it. */
  private generation(groups: readonly ReadCacheGroup[]): number {
    let sum = 0;
    for (const group of groups) sum += readCacheGeneration(this.store, group)!;
    return sum;
  }

  get(url: string): CachedResponse | undefined {
    const hit = this.entries.get(url);
    if (!hit) return undefined;
    if (hit.expiresAt > Date.now() && hit.generation === this.generation(hit.groups)) return hit;
    this.entries.delete(url);
    return undefined;
  }

  /**
   * Renders on a miss; a 2xx result is kept only when no write to its groups
   * raced the render. A miss while the same URL is already rendering, with no
   * write since that render began, waits for it instead of querying the
   * database again (an entry expiring under load would otherwise send every
   * request in flight to the database).
   */
  render(url: string, groups: readonly ReadCacheGroup[], compute: () => Promise<RenderedResponse>): Promise<RenderedResponse> {
    const generation = this.generation(groups);
    const running = this.rendering.get(url);
    if (running?.generation === generation) return running.result;
    const startedAt = Date.now();
    const result = compute()
      .then((rendered) => {
        if (rendered.status < 300 && generation === this.generation(groups)) {
          if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
          this.entries.set(url, { ...rendered, groups, generation, expiresAt: startedAt + this.ttlMs });
        }
        return rendered;
      })
      .finally(() => {
        if (this.rendering.get(url)?.result === result) this.rendering.delete(url);
      });
    this.rendering.set(url, { result, generation });
    return result;
  }
}
