import type { AlignmentReport, KvCacheDocument } from "@memory-exchange/shared";

/**
 * What a purchase or use does about the requested target model. No matrix
 * registry exists yet, so a payload is always delivered as published and the
 * report says why.
 */
export async function alignForTarget(
  document: KvCacheDocument,
  targetModel: string,
): Promise<{ document: KvCacheDocument; alignment: AlignmentReport }> {
  const sourceModel = typeof document.sourceModel === "string" ? document.sourceModel : null;
  const reason =
    sourceModel === targetModel
      ? "same model"
      : `no alignment matrix registered for ${sourceModel ?? "unknown"} -> ${targetModel}; delivered as published`;
  return { document, alignment: { applied: false, reason, sourceModel, targetModel } };
}
