import type { AnyProcedure } from "@trpc/server";
import type { Scope } from "@memory-exchange/shared";
import type { z } from "zod";
import type { Principal } from "../domain/api-keys.js";
import type { ReadCacheGroup } from "../store/read-cache.js";
import { appRouter } from "./root.js";
import { authorize, type Context, type ProcedureMeta } from "./trpc.js";

/** Dotted path of every procedure of the app router (`"memory.publish"`, `"stats.get"`…). */
type PathsOf<R, Prefix extends string = ""> = {
  [K in keyof R & string]: R[K] extends AnyProcedure ? `${Prefix}${K}` : PathsOf<R[K], `${Prefix}${K}.`>;
}[keyof R & string];
export type ProcedurePath = PathsOf<(typeof appRouter)["_def"]["record"]>;

/** The parts of a procedure its builder recorded: tier scope, Zod schemas, resolver. */
export interface ProcedureParts {
  type: "query" | "mutation" | "subscription";
  meta: ProcedureMeta | undefined;
  /** the `.input()` schema; undefined when the procedure takes none */
  input: z.ZodType | undefined;
  output: z.ZodType | undefined;
  resolver: (opts: { ctx: Context & Record<string, unknown>; input: unknown; path: string; type: string; signal: undefined }) => Promise<unknown>;
}

const procedures = appRouter._def.procedures as unknown as Record<string, AnyProcedure | undefined>;

export function isProcedurePath(path: string): path is ProcedurePath {
  return procedures[path] !== undefined;
}

export function procedureParts(path: ProcedurePath): ProcedureParts {
  const procedure = procedures[path];
  if (!procedure) throw new Error(`unknown procedure: ${path}`);
  const def = procedure._def as unknown as Omit<ProcedureParts, "input"> & { inputs: z.ZodType[] };
  if (def.inputs.length > 1) throw new Error(`${path}: chained inputs are not supported`);
  return { type: def.type, meta: def.meta, input: def.inputs[0], output: def.output, resolver: def.resolver };
}

/** A call of one procedure: context and raw input in, the validated output out. */
export type DirectCall = (ctx: Context, rawInput: unknown) => Promise<unknown>;

/** A procedure split at its tier: the scope its tier requires, and the rest of its chain. */
export interface DirectProcedure {
  /** the scope the procedure's tier requires; undefined for a public procedure */
  scope: Scope | undefined;
  /** the read-cache group its answers follow when they may be cached (ProcedureMeta.cache) */
  cache: ReadCacheGroup | undefined;
  /** input parse, resolver, output parse, for a caller `authorize(ctx, scope)` let through */
  run(ctx: Context, principal: Principal | undefined, rawInput: unknown): Promise<unknown>;
}

/**
 * A procedure called as its middleware chain would call it — the tier's rule
 * (`authorize` with the scope its tier recorded), input parse, resolver,
 * output parse — without the chain. tRPC spreads the context and options
 * once per middleware and builds a proxy per caller: in the profile of an
 * uncached browse that machinery cost as much CPU as the query itself. The
 * REST routes and the batched-query fast path call procedures this way;
 * errors are thrown as the chain would see them (classifyError reads both).
 */
export function directProcedure(path: ProcedurePath): DirectProcedure {
  const { type, meta, input, output, resolver } = procedureParts(path);
  return {
    scope: meta?.scope,
    cache: meta?.cache,
    async run(ctx, principal, rawInput) {
      const parsed = input ? input.parse(rawInput) : undefined;
      const result = await resolver({ ctx: { ...ctx, principal }, input: parsed, path, type, signal: undefined });
      if (!output) return result;
      const checked = output.safeParse(result);
      // An output that breaks its schema is our bug: a 500, not the caller's 400.
      if (!checked.success) throw new Error(`${path}: output validation failed`, { cause: checked.error });
      return checked.data;
    },
  };
}

/** A direct procedure called with its tier's rule first. */
export function directCall({ scope, run }: DirectProcedure): DirectCall {
  return async (ctx, rawInput) => run(ctx, scope ? await authorize(ctx, scope) : undefined, rawInput);
}
