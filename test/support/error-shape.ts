import { ERROR_STATUS, isErrorCode, type ErrorCode } from "@memory-exchange/shared";
import type { RawResponse } from "./raw-http.js";

/** Text that must never reach a client: SQL, driver codes, stacks, file paths, framework codes. */
export const INTERNAL_TEXT =
  /\b(SELECT|INSERT|UPDATE|DELETE FROM|WHERE)\b|\bER_[A-Z_]+|SQLITE_|sqlite|mysql|mariadb|drizzle|\bat \S+ \(|\.ts:\d+|\/work\/|node_modules|\bstack\b|FST_ERR|TypeError|RangeError|SyntaxError|ReferenceError/i;

/**
 * Checks a failure response: either the REST envelope
 * `{success:false, error, code, details?, request_id}` or the tRPC error
 * shape (`error.json.data.code`), with a code from the closed set whose
 * status is the HTTP status, and no internal text. Returns the code.
 */
export function checkErrorResponse(r: RawResponse): ErrorCode {
  const problems: string[] = [];
  const body = r.json as Record<string, any> | undefined;
  let code: unknown;
  let message: unknown;
  let requestId: unknown;
  if (Array.isArray(body)) {
    // a tRPC batch: every element is an error of the same kind
    const codes = body.map((item) => item?.error?.json?.data?.code);
    code = codes.find((c) => c !== undefined);
    message = body[0]?.error?.json?.message;
    requestId = body[0]?.error?.json?.data?.requestId;
  } else if (body && body.success === false) {
    code = body.code;
    message = body.error;
    requestId = body.request_id;
    if ("data" in body) problems.push("failure envelope carries data");
    if (body.details !== undefined && !Array.isArray(body.details)) problems.push("details is not an array");
  } else if (body?.error?.json) {
    const data = body.error.json.data ?? {};
    code = data.code;
    message = body.error.json.message;
    requestId = data.requestId;
    if (isErrorCode(code) && data.httpStatus !== ERROR_STATUS[code]) problems.push(`data.httpStatus ${data.httpStatus} != ${ERROR_STATUS[code]}`);
  } else problems.push("neither the envelope nor a tRPC error");

  if (!isErrorCode(code)) problems.push(`code ${String(code)} is not in the closed set`);
  else if (ERROR_STATUS[code] !== r.status) problems.push(`status ${r.status} != ${ERROR_STATUS[code]} for ${code}`);
  if (typeof message !== "string" || message.length === 0) problems.push("no message");
  if (INTERNAL_TEXT.test(r.text)) problems.push(`internal text leaked: ${INTERNAL_TEXT.exec(r.text)?.[0]}`);
  if (!r.headers.get("x-request-id") && typeof requestId !== "string") problems.push("no request id (header or body)");
  if (r.status >= 500 && typeof requestId !== "string") problems.push("a 5xx without request id in the body");
  if (problems.length > 0) throw new Error(`bad error response (${problems.join("; ")}): ${r.status} ${r.text.slice(0, 500)}`);
  return code as ErrorCode;
}
