/**
 * The `err` serializer of the server's logger. pino's standard one copies
 * every enumerable property and concatenates the messages of all causes, and
 * database errors carry the bound values: Drizzle's "Failed query ... params:"
 * message and `params`, mysql2's interpolated `sql`. Those values are payload
 * bytes, descriptions and key hashes, so they are dropped here; the query text
 * (placeholders only), driver codes and stack frames stay for debugging.
 */

const MAX_DEPTH = 5;
const KEPT_FIELDS = ["code", "errno", "sqlState", "sqlMessage", "statusCode"] as const;

export interface SerializedError {
  type: string;
  message: string;
  stack: string;
  cause?: SerializedError | unknown;
  [field: string]: unknown;
}

function safeMessage(error: Error & { query?: unknown; params?: unknown }): string {
  // Drizzle's DrizzleQueryError: "Failed query: <sql>\nparams: <values>".
  if (typeof error.query === "string" && "params" in error) return `Failed query: ${error.query}`;
  return String(error.message);
}

export function serializeError(error: Error, depth = 0): SerializedError {
  const fields = error as Error & Record<string, unknown>;
  const message = safeMessage(error);
  const type = error.constructor?.name ?? error.name;
  const frames = typeof error.stack === "string" ? error.stack.split("\n").filter((line) => /^\s+at /.test(line)) : [];
  const out: SerializedError = { type, message, stack: [`${error.name}: ${message}`, ...frames].join("\n") };
  for (const field of KEPT_FIELDS) {
    const v = fields[field];
    if (typeof v === "string" || typeof v === "number") out[field] = v;
  }
  const cause = error.cause;
  if (cause !== undefined && depth < MAX_DEPTH)
    out.cause = cause instanceof Error ? serializeError(cause, depth + 1) : typeof cause === "object" ? "[non-error cause]" : cause;
  return out;
}
