import {
  browseMemoriesInput,
  browseMemoriesOutput,
  getMemoryInput,
  historyInput,
  historyOutput,
  memoryDetailSchema,
  publishMemoryInput,
  publishMemoryOutput,
  purchaseMemoryInput,
  purchaseMemoryOutput,
} from "@memory-exchange/shared";
import { browseMemories, getMemory, memoryHistory, publishMemory, purchaseMemory } from "../../domain/memories.js";
import { readProcedure, tradeProcedure } from "../trpc.js";

export const memoryRouter = {
  publish: tradeProcedure
    .input(publishMemoryInput)
    .output(publishMemoryOutput)
    .mutation(({ ctx, input }) => publishMemory(ctx.services.store, ctx.principal.userId, input)),
  purchase: tradeProcedure
    .input(purchaseMemoryInput)
    .output(purchaseMemoryOutput)
    .mutation(({ ctx, input }) => purchaseMemory(ctx.services.store, ctx.services.alignment, ctx.principal.userId, input, ctx.services.inlinePayloadBytes)),
  browse: readProcedure
    .meta({ cache: "listings" })
    .input(browseMemoriesInput)
    .output(browseMemoriesOutput)
    .query(({ ctx, input }) => browseMemories(ctx.services.store, input)),
  history: readProcedure
    .input(historyInput)
    .output(historyOutput)
    .query(({ ctx, input }) => memoryHistory(ctx.services.store, ctx.principal.userId, input)),
  get: readProcedure
    .input(getMemoryInput)
    .output(memoryDetailSchema)
    .query(({ ctx, input }) => getMemory(ctx.services.store, ctx.principal.userId, input, ctx.services.inlinePayloadBytes)),
};
