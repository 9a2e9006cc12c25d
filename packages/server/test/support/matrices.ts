import type { NewMatrix } from "../../src/alignment/alignment-store.js";

/** A matrix registration for llama-3-8b → gpt-4 (128 → 64, float32); `over` changes any field. */
export const newMatrix = (over: Partial<NewMatrix> = {}): NewMatrix => ({
  sourceModel: "llama-3-8b",
  targetModel: "gpt-4",
  sourceDim: 128,
  targetDim: 64,
  dtype: "float32",
  digest: "c".repeat(64),
  version: null,
  description: null,
  publisherId: 5,
  ...over,
});
