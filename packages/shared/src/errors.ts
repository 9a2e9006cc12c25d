/**
 * The closed set of machine error codes. Each maps once to an HTTP status;
 * servers throw them, clients switch on them.
 */
export const ERROR_STATUS = {
  INVALID_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  IDEMPOTENCY_KEY_REUSED: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  SELF_PURCHASE: 422,
  UNPROCESSABLE: 422,
  ALIGNMENT_TOO_LARGE: 422,
  RANGE_NOT_SATISFIABLE: 416,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  DATABASE_UNAVAILABLE: 503,
  OVERLOADED: 503,
  TIMEOUT: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_STATUS, value);
}

/** One invalid field: `path` is the field's location, `message` says what is wrong. */
export interface ErrorDetail {
  path: string;
  message: string;
}

/**
 * Params a schema puts on a Zod issue for a value over a size limit (tensor
 * elements, serialized JSON fields): transports answer 413 PAYLOAD_TOO_LARGE
 * for it instead of 400 INVALID_INPUT.
 */
export const TOO_LARGE_ISSUE_PARAMS = { mxCode: "too_large" } as const;

export function isTooLargeIssue(issue: object): boolean {
  const params = (issue as { params?: { mxCode?: unknown } }).params;
  return params?.mxCode === TOO_LARGE_ISSUE_PARAMS.mxCode;
}
