import { ERROR_CODES, ERROR_STATUS, isErrorCode, type ErrorCode, type ErrorDetail } from "@memory-exchange/shared";
import { TRPCClientError } from "@trpc/client";
import type { AppRouter } from "@memory-exchange/server/router";

interface ErrorData {
  code?: unknown;
  details?: ErrorDetail[];
  requestId?: string;
}

/**
 * A failed call: `code` is the service's machine code (one of ERROR_CODES),
 * `status` its HTTP status, `details` the invalid fields. It is also a
 * TRPCClientError, so tRPC-aware code keeps working.
 */
export class MemoryExchangeError extends TRPCClientError<AppRouter> {
  override readonly name = "MemoryExchangeError";
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetail[];
  readonly requestId: string | undefined;

  private constructor(source: TRPCClientError<AppRouter>, code: ErrorCode, message: string, extra: ErrorData) {
    super(message, { cause: source, result: source.shape ? { error: source.shape } : undefined, meta: source.meta });
    // TRPCClientError's constructor resets the prototype to its own; restore ours so instanceof works.
    Object.setPrototypeOf(this, new.target.prototype);
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = extra.details ?? [];
    this.requestId = extra.requestId;
  }

  /** Wraps what a call threw; transport failures (no answer from the service) get code INTERNAL. */
  static override from(error: unknown): MemoryExchangeError {
    if (error instanceof MemoryExchangeError) return error;
    const source = error instanceof TRPCClientError ? (error as TRPCClientError<AppRouter>) : TRPCClientError.from<AppRouter>(error as Error);
    // tRPC errors carry `data`; failures before tRPC runs (e.g. body too large) carry the REST envelope.
    const envelope = (source.meta?.responseJSON ?? {}) as { code?: unknown; details?: ErrorDetail[]; request_id?: string; error?: unknown };
    const data: ErrorData = (source.data as ErrorData | undefined) ?? {
      code: envelope.code,
      details: envelope.details,
      requestId: envelope.request_id,
    };
    const code: ErrorCode = isErrorCode(data.code) ? data.code : "INTERNAL";
    const message = !source.data && typeof envelope.error === "string" ? envelope.error : source.message;
    return new MemoryExchangeError(source, code, message, data);
  }

  /** A failed REST call (the binary payload routes): its status and the `{error, code, details?, request_id}` envelope. */
  static fromEnvelope(status: number, body: unknown): MemoryExchangeError {
    const envelope = (typeof body === "object" && body !== null ? body : {}) as {
      code?: unknown;
      details?: ErrorDetail[];
      request_id?: string;
      error?: unknown;
    };
    const message = typeof envelope.error === "string" && envelope.error ? envelope.error : `HTTP ${status}`;
    const code: ErrorCode = isErrorCode(envelope.code)
      ? envelope.code
      : (ERROR_CODES.find((c) => ERROR_STATUS[c] === status) ?? "INTERNAL");
    const source = new TRPCClientError<AppRouter>(message, { meta: { responseJSON: body, status } });
    return new MemoryExchangeError(source, code, message, { code, details: envelope.details, requestId: envelope.request_id });
  }
}

export function isMemoryExchangeError(error: unknown, code?: ErrorCode): error is MemoryExchangeError {
  return error instanceof MemoryExchangeError && (code === undefined || error.code === code);
}
