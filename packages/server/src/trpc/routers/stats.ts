import { statsOutput } from "@memory-exchange/shared";
import { marketStats } from "../../domain/stats.js";
import { readProcedure } from "../trpc.js";

export const statsRouter = {
  get: readProcedure.meta({ cache: "stats" }).output(statsOutput).query(({ ctx }) => marketStats(ctx.services.store)),
};
