import type { FastifyRequest } from "fastify";
import { createContext, type Context, type Services } from "../trpc/trpc.js";

/** The procedures' context for a Fastify request: the same for the /trpc endpoint and the REST routes. */
export function requestContext(services: Services, request: FastifyRequest): Context {
  return createContext(services, {
    requestId: request.id,
    header: (name) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    },
  });
}
