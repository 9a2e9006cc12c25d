import { healthOutput } from "@memory-exchange/shared";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import { alignmentRouter } from "./routers/alignment.js";
import { apiKeysRouter } from "./routers/api-keys.js";
import { memoryRouter } from "./routers/memory.js";
import { reasoningChainRouter } from "./routers/reasoning-chain.js";
import { statsRouter } from "./routers/stats.js";
import { publicProcedure, router } from "./trpc.js";

export const appRouter = router({
  health: publicProcedure.output(healthOutput).query(({ ctx }) => ({
    status: "ok" as const,
    service: "memory-exchange" as const,
    version: ctx.services.version,
  })),
  memory: router(memoryRouter),
  reasoningChain: router(reasoningChainRouter),
  stats: router(statsRouter),
  apiKeys: router(apiKeysRouter),
  alignment: router(alignmentRouter),
});

export type AppRouter = typeof appRouter;
export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;
