import type { KvCacheDocument } from "@memory-exchange/shared";

/** A small, valid KV cache ([layers][heads][tokens][head_dim]) with values that JSON float32 would round. */
export function kvCache(sourceModel = "llama-3-8b", seed = 1): KvCacheDocument {
  const tensor = (offset: number) =>
    [0, 1].map((layer) =>
      [0, 1].map((head) => [0, 1, 2].map((token) => [0, 1, 2, 3].map((d) => seed * 0.1 + offset + layer + head * 0.5 + token * 0.25 + d * 1e-9 + 0.1))),
    );
  return {
    sourceModel,
    keys: tensor(0),
    values: tensor(1000.123456789),
    metadata: { sequenceLength: 3, tokenCount: 3, contextDescription: "fixture", nested: { camelCase: true } },
  };
}
