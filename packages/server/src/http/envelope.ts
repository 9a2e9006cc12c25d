import { ERROR_STATUS } from "@memory-exchange/shared";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { DomainError, toDomainError } from "../errors.js";

/** The REST failure envelope: `{success:false, error, code, details?, request_id}` with the code's status. */
export function sendError(reply: FastifyReply, error: DomainError) {
  const status = ERROR_STATUS[error.code];
  if (error.retryAfter !== undefined) void reply.header("retry-after", String(error.retryAfter));
  return reply.code(status).send({
    success: false,
    error: error.message,
    code: error.code,
    ...(error.details ? { details: error.details } : {}),
    request_id: reply.request.id,
  });
}

export const ok = <T>(data: T) => ({ success: true as const, data });

/** Fastify's own failures (body too large, bad JSON, unsupported type) as DomainErrors. */
export function fromFastifyError(error: FastifyError): DomainError {
  if (error instanceof DomainError) return error;
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new DomainError("PAYLOAD_TOO_LARGE", "Request body is larger than the configured limit");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new DomainError("UNSUPPORTED_MEDIA_TYPE", "Unsupported Content-Type; send application/json");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new DomainError("INVALID_INPUT", "Request body is empty; send a JSON object");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new DomainError("INVALID_INPUT", "Content-Length does not match the body");
    case "FST_ERR_HANDLER_TIMEOUT":
      return new DomainError("TIMEOUT", "The request took too long; retry later", undefined, 1);
  }
  if (error.statusCode === 400 && /JSON/i.test(error.message))
    return new DomainError("INVALID_INPUT", "Request body is not valid JSON");
  if (error.statusCode === 413) return new DomainError("PAYLOAD_TOO_LARGE", "Request body is too large");
  if (error.statusCode === 429) return new DomainError("RATE_LIMITED", "Too many requests; slow down");
  if (error.statusCode === 503) return new DomainError("OVERLOADED", "The service is overloaded; retry later", undefined, 1);
  return toDomainError(error);
}

export function handleHttpError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const domain = fromFastifyError(error);
  if (domain.code === "INTERNAL") request.log.error({ err: error }, "request failed");
  return sendError(reply, domain);
}
