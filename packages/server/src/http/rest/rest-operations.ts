import type { Scope } from "@memory-exchange/shared";
import { directProcedure, type DirectProcedure } from "../../trpc/direct-call.js";
import { compileInputMapper, compileOutputConverter, type InputMapper, type JsonSchema } from "./case-mapping.js";
import { procedureSchemas, type ProcedureSchemas } from "./procedure-schemas.js";
import { REST_ROUTES, type RestRoute } from "./route-table.js";

/** A route of the table with everything the transport needs, compiled once at startup. */
export interface RestOperation {
  route: RestRoute;
  /** the scope the procedure's tier requires (read from the procedure, which is where it is enforced) */
  scope: Scope;
  /** the procedure past its tier (`directProcedure`) */
  procedure: DirectProcedure;
  schemas: ProcedureSchemas;
  input: InputMapper;
  /** procedure output (camelCase, Dates) → REST `data` (snake_case, ISO strings) */
  toRest: (output: unknown) => unknown;
}

export function compileOperation(route: RestRoute): RestOperation {
  const schemas = procedureSchemas(route.procedure);
  const procedure = directProcedure(route.procedure);
  if (!procedure.scope) throw new Error(`${route.operationId}: REST routes call procedures of an authenticated tier`);
  const params = route.params ?? {};
  const input = compileInputMapper(schemas.input, {
    aliases: { ...route.aliases, ...params },
    // A path parameter's errors name the parameter (`id`), not the field it fills.
    restNames: Object.fromEntries(Object.entries(params).map(([param, field]) => [field, param])),
  });
  if (route.input === "path" && !Object.values(params).every((field) => schemas.input?.properties?.[field]))
    throw new Error(`${route.operationId}: a path parameter names no input field of ${route.procedure}`);
  return { route, scope: procedure.scope, procedure, schemas, input, toRest: compileOutputConverter(schemas.output as JsonSchema) };
}

let operations: readonly RestOperation[] | undefined;

/** The route table, compiled (memoized: the router and its schemas are static). */
export function restOperations(): readonly RestOperation[] {
  operations ??= REST_ROUTES.map(compileOperation);
  return operations;
}
