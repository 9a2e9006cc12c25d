import { ERROR_STATUS, isTooLargeIssue, type ErrorCode, type ErrorDetail } from "@memory-exchange/shared";
import { initTRPC, TRPCError } from "@trpc/server";
import type { TRPC_ERROR_CODE_KEY, TRPC_ERROR_CODE_NUMBER } from "@trpc/server/rpc";
import { ZodError } from "zod";
import type { AlignmentRuntime } from "../alignment/alignment-runtime.js";
import { authenticate, requireScope, type ApiKeyVerifier, type Principal } from "../domain/api-keys.js";
import type { Scope } from "@memory-exchange/shared";
import { DomainError, toDomainError } from "../errors.js";
import type { ReadCacheGroup } from "../store/read-cache.js";
import type { Store } from "../store/store.js";
import { wireTransformer } from "./wire-transformer.js";

/** A structured logger (pino satisfies it); kept minimal so router types stay free of server dependencies. */
export interface Logger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

export interface Services {
  store: Store;
  keys: ApiKeyVerifier;
  log: Logger;
  version: string;
  /** MEMORY_EXCHANGE_INLINE_PAYLOAD_MB in bytes: larger payloads are answered as a payloadUrl, not inline */
  inlinePayloadBytes: number;
  /** alignment matrices, the aligned-result cache and the worker pool that computes xW */
  alignment: AlignmentRuntime;
}

export interface RequestInfo {
  requestId: string;
  header(name: string): string | undefined;
}

/** Per-request context, the same for the tRPC endpoint and the REST routes. */
export function createContext(services: Services, request: RequestInfo) {
  return { services, requestId: request.requestId, header: request.header };
}
export type Context = ReturnType<typeof createContext>;

const TRPC_CODES: Record<number, TRPC_ERROR_CODE_KEY> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  409: "CONFLICT",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
  416: "BAD_REQUEST",
  422: "UNPROCESSABLE_CONTENT",
  429: "TOO_MANY_REQUESTS",
  500: "INTERNAL_SERVER_ERROR",
  503: "SERVICE_UNAVAILABLE",
};

const FROM_TRPC: Partial<Record<TRPC_ERROR_CODE_KEY, ErrorCode>> = {
  PARSE_ERROR: "INVALID_INPUT",
  BAD_REQUEST: "INVALID_INPUT",
  NOT_FOUND: "NOT_FOUND",
  METHOD_NOT_SUPPORTED: "INVALID_INPUT",
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  TOO_MANY_REQUESTS: "RATE_LIMITED",
  UNAUTHORIZED: "UNAUTHENTICATED",
  FORBIDDEN: "FORBIDDEN",
};

export function zodDetails(error: ZodError): ErrorDetail[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join(".") || "(input)", message: issue.message }));
}

/** Anything a procedure threw, as a DomainError (the only kind that reaches clients). */
export function classifyError(error: unknown): DomainError {
  const cause = error instanceof TRPCError ? error.cause : undefined;
  // Input validation fails as BAD_REQUEST; a ZodError under any other code is an output that broke its schema (a bug: 500).
  const zod = error instanceof ZodError ? error : error instanceof TRPCError && error.code === "BAD_REQUEST" && cause instanceof ZodError ? cause : undefined;
  if (zod) {
    const details = zodDetails(zod);
    const summary = details.map((d) => `${d.path}: ${d.message}`).join("; ");
    // A value over a size limit (tensor elements, JSON field bytes) is 413, not 400.
    if (zod.issues.some(isTooLargeIssue)) return new DomainError("PAYLOAD_TOO_LARGE", `Input too large: ${summary}`, details);
    return new DomainError("INVALID_INPUT", `Invalid input: ${summary}`, details);
  }
  if (cause instanceof DomainError) return cause;
  if (error instanceof TRPCError) {
    const code = FROM_TRPC[error.code];
    // tRPC's own refusals (bad JSON, bad superjson, wrong method) keep their wording; a wrapped
    // exception's text (parser internals) is replaced by a plain one.
    if (code) return new DomainError(code, cause ? `The request is malformed (${error.code.toLowerCase().replace("_", " ")})` : error.message);
  }
  return toDomainError(cause ?? error);
}

export function toTRPCError(error: DomainError): TRPCError {
  return new TRPCError({ code: TRPC_CODES[ERROR_STATUS[error.code]] ?? "INTERNAL_SERVER_ERROR", message: error.message, cause: error });
}

/** Procedure meta: the scope of its tier (none = public), and whether its answers may be cached. */
export interface ProcedureMeta {
  scope?: Scope;
  /**
   * The answer depends only on the input, the same for every caller the tier
   * lets through: rendered responses may be kept (http/response-cache.ts) until
   * a write to this read-cache group.
   */
  cache?: ReadCacheGroup;
}

/**
 * The error a tRPC client receives for a failed call: the DomainError's
 * message, code, status and details, the request id and the procedure path.
 * `jsonRpcCode` is tRPC's numeric code of the TRPCError that carried it.
 */
export function trpcErrorShape(domain: DomainError, jsonRpcCode: TRPC_ERROR_CODE_NUMBER, requestId: string | undefined, path: string | undefined) {
  return {
    message: domain.message,
    code: jsonRpcCode,
    data: { code: domain.code, httpStatus: ERROR_STATUS[domain.code], details: domain.details, requestId, path },
  };
}

const t = initTRPC.context<Context>().meta<ProcedureMeta>().create({
  // superjson on the wire; outputs serialized by a fast, format-identical path (see wire-transformer.ts)
  transformer: wireTransformer,
  isDev: false,
  errorFormatter: ({ shape, error, ctx }) => trpcErrorShape(classifyError(error), shape.code, ctx?.requestId, shape.data.path),
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/**
 * A failed procedure as the DomainError its caller receives; unknown failures
 * (and database outages) are logged here with the request id, never shown.
 */
export function reportFailure(ctx: Context, path: string, error: unknown): DomainError {
  const domain = classifyError(error);
  if (domain.code === "INTERNAL" || domain.code === "DATABASE_UNAVAILABLE")
    ctx.services.log.error({ err: error instanceof TRPCError ? (error.cause ?? error) : error, path, requestId: ctx.requestId }, "procedure failed");
  return domain;
}

/** Every procedure: errors leave as DomainErrors. */
export const publicProcedure = t.procedure.use(async ({ ctx, next, path }) => {
  const result = await next();
  if (result.ok) return result;
  throw toTRPCError(reportFailure(ctx, path, result.error));
});

/** A tier's rule: a valid API key carrying `scope`. The principal says who acts. */
export async function authorize(ctx: Context, scope: Scope): Promise<Principal> {
  const principal = await authenticate(ctx.services.keys, ctx.header);
  requireScope(principal, scope);
  return principal;
}

/** One middleware per tier; the scope is also kept as meta so direct calls (direct-call.ts) apply the same rule. */
const tier = (scope: Scope) =>
  publicProcedure.meta({ scope }).use(async ({ ctx, next }) => next({ ctx: { principal: await authorize(ctx, scope) } }));

export const readProcedure = tier("read");
export const tradeProcedure = tier("trade");
export const adminProcedure = tier("admin");
