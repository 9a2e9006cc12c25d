import {
  listMatricesInput,
  listMatricesOutput,
  publishMatrixInput,
  publishMatrixOutput,
  setMatrixStatusInput,
  setMatrixStatusOutput,
} from "@memory-exchange/shared";
import { listMatrices, publishMatrix, setMatrixStatus } from "../../domain/alignment-matrices.js";
import { readProcedure, tradeProcedure } from "../trpc.js";

export const alignmentRouter = {
  publishMatrix: tradeProcedure
    .input(publishMatrixInput)
    .output(publishMatrixOutput)
    .mutation(({ ctx, input }) => publishMatrix(ctx.services.store, ctx.services.alignment, ctx.principal.userId, input)),
  list: readProcedure
    .input(listMatricesInput)
    .output(listMatricesOutput)
    .query(({ ctx, input }) => listMatrices(ctx.services.alignment, input)),
  setStatus: tradeProcedure
    .input(setMatrixStatusInput)
    .output(setMatrixStatusOutput)
    .mutation(({ ctx, input }) => setMatrixStatus(ctx.services.alignment, ctx.principal, input)),
};
