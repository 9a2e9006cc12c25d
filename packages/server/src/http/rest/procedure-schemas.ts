import type { AnyProcedure } from "@trpc/server";
import { z } from "zod";
import { appRouter } from "../../trpc/root.js";
import type { JsonSchema } from "./case-mapping.js";

/** Dotted path of every procedure of the app router (`"memory.publish"`, `"stats.get"`…). */
type PathsOf<R, Prefix extends string = ""> = {
  [K in keyof R & string]: R[K] extends AnyProcedure ? `${Prefix}${K}` : PathsOf<R[K], `${Prefix}${K}.`>;
}[keyof R & string];
export type ProcedurePath = PathsOf<(typeof appRouter)["_def"]["record"]>;

export interface ProcedureSchemas {
  type: "query" | "mutation" | "subscription";
  /** camelCase JSON Schema of the input (undefined when the procedure takes none) */
  input: JsonSchema | undefined;
  /** camelCase JSON Schema of the output */
  output: JsonSchema;
}

const procedures = appRouter._def.procedures as unknown as Record<string, AnyProcedure | undefined>;

/** Dates have no JSON Schema of their own; on the wire (REST) they are ISO 8601 strings. Payloads (`z.custom`) stay `{}`. */
function toJsonSchema(schema: z.ZodType, io: "input" | "output"): JsonSchema {
  const json = z.toJSONSchema(schema, {
    io,
    unrepresentable: ({ zodSchema }) => (zodSchema._zod.def.type === "date" ? { type: "string", format: "date-time" } : "any"),
  }) as JsonSchema;
  delete json.$schema;
  return json;
}

/**
 * The JSON Schemas of a procedure, read from the procedure itself (the Zod
 * schemas its `.input()` / `.output()` declare), so REST and OpenAPI can never
 * drift from what tRPC validates.
 */
export function procedureSchemas(path: ProcedurePath): ProcedureSchemas {
  const procedure = procedures[path];
  if (!procedure) throw new Error(`REST route table names an unknown procedure: ${path}`);
  const def = procedure._def as unknown as { type: ProcedureSchemas["type"]; inputs: unknown[]; output?: unknown };
  if (def.inputs.length > 1) throw new Error(`${path}: chained inputs are not supported by the REST adapter`);
  const [input] = def.inputs;
  if (!def.output) throw new Error(`${path}: REST routes need procedures with an explicit output schema`);
  return {
    type: def.type,
    input: input ? toJsonSchema(input as z.ZodType, "input") : undefined,
    output: toJsonSchema(def.output as z.ZodType, "output"),
  };
}
