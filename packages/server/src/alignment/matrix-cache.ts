import { ExpiringCache } from "../store/expiring-cache.js";
import type { AlignmentStore, MatrixRow } from "./alignment-store.js";

/**
 * Which matrix a purchase applies for a pair of models (`newestActiveMatrix`)
 * is looked up on every purchase and chain use between two models, and it
 * changes only when a matrix is registered or its status changes. Kept for
 * `ttlMs`, like the read cache's browse pages:
 * - a registration or status change through this store drops every entry
 *   before it returns, so this instance applies it to the next purchase;
 * - a lookup that raced such a change never stores its result;
 * - changes made by another instance show here within `ttlMs`.
 * Misses (no active matrix for the pair) are kept too: most purchases are
 * between models without one.
 */
export function withMatrixCache(store: AlignmentStore, options: { ttlMs: number; maxEntries?: number }): AlignmentStore {
  if (options.ttlMs <= 0) return store;
  const pairs = new ExpiringCache<MatrixRow | null>(options.ttlMs, options.maxEntries ?? 1000);
  return {
    ...store,
    newestActiveMatrix: (sourceModel, targetModel) =>
      pairs.get(JSON.stringify([sourceModel, targetModel]), () => store.newestActiveMatrix(sourceModel, targetModel)),
    async insertMatrix(matrix) {
      try {
        return await store.insertMatrix(matrix);
      } finally {
        pairs.invalidate();
      }
    },
    async setMatrixStatus(id, status) {
      try {
        await store.setMatrixStatus(id, status);
      } finally {
        pairs.invalidate();
      }
    },
  };
}
