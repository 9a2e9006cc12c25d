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
  const maxEntries = options.maxEntries ?? 1000;
  const entries = new Map<string, { matrix: MatrixRow | null; expiresAt: number }>();
  let generation = 0;
  const invalidate = () => {
    generation++;
    entries.clear();
  };

  return {
    ...store,
    async newestActiveMatrix(sourceModel, targetModel) {
      const key = JSON.stringify([sourceModel, targetModel]);
      const now = Date.now();
      const hit = entries.get(key);
      if (hit && hit.expiresAt > now) return hit.matrix;
      const started = generation;
      const matrix = await store.newestActiveMatrix(sourceModel, targetModel);
      if (started === generation) {
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
        entries.set(key, { matrix, expiresAt: now + options.ttlMs });
      }
      return matrix;
    },
    async insertMatrix(matrix) {
      try {
        return await store.insertMatrix(matrix);
      } finally {
        invalidate();
      }
    },
    async setMatrixStatus(id, status) {
      try {
        await store.setMatrixStatus(id, status);
      } finally {
        invalidate();
      }
    },
  };
}
