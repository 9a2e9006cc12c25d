import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
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
    case "FST_ERR_BAD_URL":
      return new DomainError("INVALID_INPUT", "The URL is malformed (bad percent-encoding)");
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

/**
 * Requests Node's HTTP parser rejects (malformed request line or headers,
 * headers too large, too slow) never reach Fastify's routing: answer them
 * with the envelope too, then close the socket.
 */
export function handleClientError(error: NodeJS.ErrnoException, socket: Socket) {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const domain =
    error.code === "HPE_HEADER_OVERFLOW"
      ? new DomainError("PAYLOAD_TOO_LARGE", "Request headers are too large")
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? new DomainError("TIMEOUT", "The request was not received in time", undefined, 1)
        : new DomainError("INVALID_INPUT", "Malformed HTTP request");
  const status = ERROR_STATUS[domain.code];
  const body = JSON.stringify({ success: false, error: domain.message, code: domain.code, request_id: randomUUID() });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${status === 400 ? "Bad Request" : status === 413 ? "Content Too Large" : "Service Unavailable"}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
