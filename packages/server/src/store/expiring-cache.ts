/**
 * Entries kept for a TTL and dropped together by `invalidate()` (a write).
 * A read that was in flight when an invalidation came is answered but not
 * kept: it may have read what the write changed. The oldest entry goes first
 * past `maxEntries`.
 */
export class ExpiringCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  /** bumped by every invalidation: a read that started before it must not store its result */
  generation = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  /** The value kept for `key`, else `load()`'s, kept unless an invalidation came while it loaded. */
  async get(key: string, load: () => Promise<V>): Promise<V> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.expiresAt > now) return hit.value;
    const generation = this.generation;
    const value = await load();
    if (this.generation === generation) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, { value, expiresAt: now + this.ttlMs });
    }
    return value;
  }

  invalidate(): void {
    this.generation++;
    this.entries.clear();
  }
}
