import type { ErrorCode, ErrorDetail } from "@memory-exchange/shared";
import { ChainUnavailableError } from "./store/store.js";

/**
 * The one error type domain code throws. Transports map `code` to a status
 * (ERROR_STATUS) and an envelope; nothing else about an error reaches a client.
 */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    /** seconds, for RATE_LIMITED / IDEMPOTENCY_KEY_IN_USE */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "DomainError";
  }
}

export const notFound = (what: string) => new DomainError("NOT_FOUND", `${what} not found`);
export const invalidInput = (path: string, message: string) =>
  new DomainError("INVALID_INPUT", `${path}: ${message}`, [{ path, message }]);

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EPIPE",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ER_CON_COUNT_ERROR",
  "ER_SERVER_SHUTDOWN",
  "ER_ACCESS_DENIED_ERROR",
  "ER_BAD_DB_ERROR",
  "POOL_CLOSED",
  "SQLITE_CANTOPEN",
  "SQLITE_IOERR",
  "SQLITE_NOTADB",
  "SQLITE_CORRUPT",
]);
const BUSY_CODES = new Set(["SQLITE_BUSY", "SQLITE_LOCKED", "ER_LOCK_WAIT_TIMEOUT", "ER_LOCK_DEADLOCK", "ER_QUERY_INTERRUPTED"]);

/** The error and its `cause` chain (bounded). */
export function* causes(error: unknown): Generator<unknown> {
  for (let e = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) yield e;
}

/** Maps anything thrown to a DomainError; unknown failures become INTERNAL with no internal text. */
export function toDomainError(error: unknown): DomainError {
  for (const e of causes(error)) {
    if (e instanceof DomainError) return e;
    if (e instanceof ChainUnavailableError) return notFound(`reasoning chain ${e.chainId}`);
    // mysql2 marks errors that killed the connection as fatal, some without a code ("closed state").
    if ((e as { fatal?: unknown }).fatal === true && e instanceof Error && !("sqlMessage" in e))
      return new DomainError("DATABASE_UNAVAILABLE", "The database is unavailable; retry later", undefined, 1);
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") {
      if (CONNECTION_CODES.has(code) || (e instanceof Error && /pool is closed|connection.*closed/i.test(e.message)))
        return new DomainError("DATABASE_UNAVAILABLE", "The database is unavailable; retry later", undefined, 1);
      // SQLite reports extended codes too (SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED_SHAREDCACHE…): the same condition.
      if (BUSY_CODES.has(code) || /^SQLITE_(BUSY|LOCKED)_/.test(code)) return new DomainError("OVERLOADED", "The database is busy; retry", undefined, 1);
    }
  }
  return new DomainError("INTERNAL", "Internal server error");
}
