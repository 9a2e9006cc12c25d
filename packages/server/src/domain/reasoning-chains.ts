import {
  toCents,
  type browseChainsInput,
  type browseChainsOutput,
  type publishChainInput,
  type publishChainOutput,
  type useChainInput,
  type useChainOutput,
} from "@memory-exchange/shared";
import type { z } from "zod";
import { invalidInput, notFound } from "../errors.js";
import { recordTrade } from "../http/metrics.js";
import type { Store } from "../store/store.js";
import type { AlignmentRuntime } from "../alignment/alignment-runtime.js";
import { alignedPayloadUrl, deliverKvCache } from "./alignment.js";
import { decodeCursor, nextCursor } from "./cursor.js";
import { priceRangeCents } from "./filters.js";
import { chainPayloadUrl } from "../payloads/payload-urls.js";
import { DEFAULT_INLINE_PAYLOAD_BYTES, publishedPayload, recordPublishedPayload } from "./kv-cache-payloads.js";
import { toChain } from "./presenters.js";

type Out<T extends z.ZodType> = z.output<T>;

const jsonText = (value: unknown) => (value === undefined ? null : JSON.stringify(value));

export async function publishChain(store: Store, creatorId: number, input: Out<typeof publishChainInput>): Promise<Out<typeof publishChainOutput>> {
  const snapshot = input.kvCacheSnapshot;
  // Checked before anything is stored for inline data; an upload's model is known once its header is read.
  if (snapshot && snapshot.sourceModel !== input.sourceModel)
    throw invalidInput("kvCacheSnapshot.sourceModel", `must equal sourceModel (${input.sourceModel}), got ${snapshot.sourceModel}`);
  const stored = await publishedPayload(store, creatorId, { data: snapshot, ref: input.kvCacheRef, refPath: "kvCacheRef" });
  if (stored.sourceModel !== input.sourceModel)
    throw invalidInput(
      "kvCacheRef",
      `the uploaded payload's sourceModel (${stored.sourceModel}, from __metadata__.sourceModel) must equal sourceModel (${input.sourceModel})`,
    );
  const chainId = await store.insertChain(
    {
      creatorId,
      chainName: input.chainName,
      description: input.description,
      category: input.category,
      sourceModel: input.sourceModel,
      pricePerUseCents: toCents(input.pricePerUse)!,
      stepCount: input.stepCount ?? null,
      inputExample: jsonText(input.inputExample),
      outputExample: jsonText(input.outputExample),
      payloadDigest: stored.digest,
      payloadSize: stored.size,
    },
    stored.toStore,
  );
  recordPublishedPayload(stored);
  return { chainId };
}

export async function browseChains(store: Store, input: Out<typeof browseChainsInput>): Promise<Out<typeof browseChainsOutput>> {
  const rows = await store.browseChains({
    category: input.category,
    sourceModel: input.sourceModel,
    ...priceRangeCents(input.minPrice, input.maxPrice),
    limit: input.limit,
    offset: input.offset,
    after: input.cursor ? decodeCursor(input.cursor) : undefined,
  });
  return { chains: rows.map(toChain), count: rows.length, nextCursor: nextCursor(rows, input.limit) };
}

/**
 * One paid use of a chain: the use is recorded and the chain's usage_count and
 * total_revenue bumped in one transaction. The creator's own use is free.
 */
export async function useChain(
  store: Store,
  aligner: AlignmentRuntime,
  userId: number,
  input: Out<typeof useChainInput>,
  inlineLimitBytes = DEFAULT_INLINE_PAYLOAD_BYTES,
): Promise<Out<typeof useChainOutput>> {
  const chain = await store.findChain(input.chainId);
  if (!chain || chain.status !== "active") throw notFound(`reasoning chain ${input.chainId}`);
  const priceCents = chain.creatorId === userId ? 0 : chain.pricePerUseCents;
  const location = { payloadDigest: chain.payloadDigest, payloadSize: chain.payloadSize, inlineJson: chain.kvCacheSnapshot };
  // Delivered (aligned) before the use is recorded: an alignment that cannot run (ALIGNMENT_TOO_LARGE, OVERLOADED) charges nothing.
  const delivery = await deliverKvCache(store, aligner, { location, sourceModel: chain.sourceModel }, input.targetModel, inlineLimitBytes);
  const { trade, chain: updated } = await store.recordChainUse({ chain, userId, priceCents, targetModel: input.targetModel });
  recordTrade("chain_use", trade.priceCents);
  return {
    transactionId: trade.id,
    chain: toChain(updated),
    ...(delivery.document ? { kvCacheSnapshot: delivery.document } : {}),
    payloadUrl: alignedPayloadUrl(chainPayloadUrl(chain.id, trade.id), delivery.alignedDigest),
    alignment: delivery.alignment,
  };
}

export async function getChain(store: Store, chainId: number) {
  const chain = await store.findChain(chainId);
  if (!chain || chain.status !== "active") throw notFound(`reasoning chain ${chainId}`);
  return toChain(chain);
}
