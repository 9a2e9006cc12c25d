import {
  createApiKeyInput,
  createApiKeyOutput,
  listApiKeysInput,
  listApiKeysOutput,
  revokeApiKeyInput,
  revokeApiKeyOutput,
} from "@memory-exchange/shared";
import { createApiKey, listApiKeys, revokeApiKey } from "../../domain/api-keys.js";
import { adminProcedure } from "../trpc.js";

export const apiKeysRouter = {
  create: adminProcedure
    .input(createApiKeyInput)
    .output(createApiKeyOutput)
    .mutation(({ ctx, input }) => createApiKey(ctx.services.store, input)),
  list: adminProcedure
    .input(listApiKeysInput)
    .output(listApiKeysOutput)
    .query(async ({ ctx, input }) => ({ keys: await listApiKeys(ctx.services.store, input.userId) })),
  revoke: adminProcedure
    .input(revokeApiKeyInput)
    .output(revokeApiKeyOutput)
    .mutation(({ ctx, input }) => revokeApiKey(ctx.services.store, ctx.services.keys, input.id)),
};
