import { z } from "zod";
import { procedureParts, type ProcedurePath } from "../../trpc/direct-call.js";
import type { JsonSchema } from "./case-mapping.js";

export interface ProcedureSchemas {
  type: "query" | "mutation" | "subscription";
  /** camelCase JSON Schema of the input (undefined when the procedure takes none) */
  input: JsonSchema | undefined;
  /** camelCase JSON Schema of the output */
  output: JsonSchema;
}

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
  const { type, input, output } = procedureParts(path);
  if (!output) throw new Error(`${path}: REST routes need procedures with an explicit output schema`);
  return {
    type,
    input: input ? toJsonSchema(input, "input") : undefined,
    output: toJsonSchema(output, "output"),
  };
}
