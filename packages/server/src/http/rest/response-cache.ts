import { readCacheGeneration, type ReadCacheGroup } from "../../store/read-cache.js";
import type { Store } from "../../store/store.js";

interface CachedResponse {
  status: number;
  body: string;
  generation: number;
  expiresAt: number;
}

/**
 * Rendered REST responses of the routes whose answer is the same for every
 * caller (browse pages, stats), keyed by URL. A hit skips the procedure call,
 * validation, snake_case mapping and serialisation: profiles of a warm browse
 * spent ~75% of its CPU there. Freshness follows the store's read cache:
 * an entry dies with any write to its group in this process (generation) and
 * after one TTL; misses must read the database directly (`uncachedStore`), so an
 * entry is never older than one TTL. Authentication and the scope are checked
 * on every request, hit or miss.
 */
export class RestResponseCache {
  private readonly entries = new Map<string, CachedResponse>();
  private readonly rendering = new Map<string, { result: Promise<{ status: number; body: string }>; generation: number }>();

  constructor(
    private readonly store: Store,
    private readonly group: ReadCacheGroup,
    private readonly ttlMs: number,
    private readonly maxEntries = 1000,
  ) {}

  /** True when the store has a read cache to follow (and the TTL is on). */
  get enabled(): boolean {
    return this.ttlMs > 0 && readCacheGeneration(this.store, this.group) !== undefined;
  }

  get(url: string): CachedResponse | undefined {
    const hit = this.entries.get(url);
    if (!hit) return undefined;
    if (hit.expiresAt > Date.now() && hit.generation === readCacheGeneration(this.store, this.group)) return hit;
    this.entries.delete(url);
    return undefined;
  }

  /**
   * Renders on a miss; the result is kept only when no write raced the render.
   * A miss while the same URL is already rendering, with no write since that
   * render began, waits for it instead of querying the database again (an
   * entry expiring under load would otherwise send every request in flight
   * to the database).
   */
  render(url: string, compute: () => Promise<{ status: number; body: string }>): Promise<{ status: number; body: string }> {
    const generation = readCacheGeneration(this.store, this.group)!;
    const running = this.rendering.get(url);
    if (running?.generation === generation) return running.result;
    const startedAt = Date.now();
    const result = compute()
      .then((rendered) => {
        if (rendered.status < 300 && generation === readCacheGeneration(this.store, this.group)) {
          if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
          this.entries.set(url, { ...rendered, generation, expiresAt: startedAt + this.ttlMs });
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
