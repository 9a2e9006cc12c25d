import {
  browseChainsInput,
  browseChainsOutput,
  getChainInput,
  publishChainInput,
  publishChainOutput,
  reasoningChainSchema,
  useChainInput,
  useChainOutput,
} from "@memory-exchange/shared";
import { browseChains, getChain, publishChain, useChain } from "../../domain/reasoning-chains.js";
import { readProcedure, tradeProcedure } from "../trpc.js";

export const reasoningChainRouter = {
  publish: tradeProcedure
    .input(publishChainInput)
    .output(publishChainOutput)
    .mutation(({ ctx, input }) => publishChain(ctx.services.store, ctx.principal.userId, input)),
  use: tradeProcedure
    .input(useChainInput)
    .output(useChainOutput)
    .mutation(({ ctx, input }) => useChain(ctx.services.store, ctx.services.alignment, ctx.principal.userId, input, ctx.services.inlinePayloadBytes)),
  browse: readProcedure
    .meta({ cache: "chains" })
    .input(browseChainsInput)
    .output(browseChainsOutput)
    .query(({ ctx, input }) => browseChains(ctx.services.store, input)),
  get: readProcedure
    .input(getChainInput)
    .output(reasoningChainSchema)
    .query(({ ctx, input }) => getChain(ctx.services.store, input.chainId)),
};
