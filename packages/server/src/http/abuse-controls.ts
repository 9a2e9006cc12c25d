import rateLimit from "@fastify/rate-limit";
import underPressure from "@fastify/under-pressure";
import type { FastifyReply, FastifyRequest, onRequestAbortHookHandler, onRequestHookHandler, onResponseHookHandler } from "fastify";
import fp from "fastify-plugin";
import type { Config } from "../config.js";
import { presentedApiKey, type ApiKeyVerifier } from "../domain/api-keys.js";
import { DomainError } from "../errors.js";
import { sendError } from "./envelope.js";
import { withHook } from "./route-hooks.js";

export interface AbuseControlsOptions {
  rateLimit: Config["rateLimit"];
  underPressure: Config["underPressure"];
  /** longest time from routing to the reply (0: none) */
  requestTimeoutMs: number;
  keys: ApiKeyVerifier;
}

/** Liveness and scraping stay answerable whatever the load, so orchestrators see the truth. */
const EXEMPT = new Set(["/health", "/ready", "/metrics"]);
const isExempt = (request: FastifyRequest) => EXEMPT.has(request.url.split("?")[0]!);

declare module "fastify" {
  interface FastifyRequest {
    /** the request-timeout timer (abuse controls), cleared once the response is out */
    abuseTimer: NodeJS.Timeout | null;
  }
}

/** The handler keeps running (it cannot be interrupted); its late reply is dropped by Fastify. */
function answerTimeout(reply: FastifyReply) {
  if (!reply.sent && !reply.raw.headersSent) void sendError(reply, new DomainError("TIMEOUT", "The request took too long; retry later", undefined, 1));
}

/**
 * Requests are counted per valid API key (by its id), else per client
 * address: made-up keys share their sender's bucket, so rotating them does
 * not escape the limit.
 */
async function rateLimitKey(keys: ApiKeyVerifier, request: FastifyRequest): Promise<string> {
  const key = presentedApiKey((name) => {
    const value = request.headers[name];
    return Array.isArray(value) ? value[0] : value;
  });
  const row = key ? await keys.verify(key).catch(() => null) : null;
  return row ? `key:${row.id}` : `ip:${request.ip}`;
}

/**
 * Per-key rate limiting (429 RATE_LIMITED with Retry-After), load shedding
 * under event-loop pressure (503 OVERLOADED with Retry-After) and a request
 * timeout (503 TIMEOUT). Register before the routes: the rate limiter
 * attaches itself to routes as they are added.
 */
export const abuseControls = fp<AbuseControlsOptions>(
  async (app, options) => {
    const { maxEventLoopDelayMs, maxEventLoopUtilization } = options.underPressure;
    if (maxEventLoopDelayMs > 0 || maxEventLoopUtilization > 0) {
      await app.register(underPressure, {
        maxEventLoopDelay: maxEventLoopDelayMs,
        maxEventLoopUtilization,
        eventLoopUtilizationMode: "interval",
        // Resolving lets the request through; a rejection goes to the error handler (the envelope).
        pressureHandler: async (request, _reply, type) => {
          if (!isExempt(request)) throw new DomainError("OVERLOADED", `The service is overloaded (${type}); retry later`, undefined, 1);
        },
      });
    }

    if (options.requestTimeoutMs > 0) {
      // Fastify's own handlerTimeout is disarmed once a request body has been read (fastify/fastify#6725),
      // which is every POST: answer 503 TIMEOUT ourselves. Routes with their own handlerTimeout keep it.
      // Armed per route, so the exempt ones pay nothing; unmatched URLs answer at once (a stalled body
      // there meets Node's requestTimeout).
      const timeoutMs = options.requestTimeoutMs;
      app.decorateRequest("abuseTimer", null);
      const arm: onRequestHookHandler = (request, reply, done) => {
        request.abuseTimer = setTimeout(answerTimeout, timeoutMs, reply).unref();
        done();
      };
      const disarm: onResponseHookHandler = (request, _reply, done) => {
        clearTimeout(request.abuseTimer ?? undefined);
        done();
      };
      const disarmOnAbort: onRequestAbortHookHandler = (request, done) => {
        clearTimeout(request.abuseTimer ?? undefined);
        done();
      };
      app.addHook("onRoute", (route) => {
        if (route.handlerTimeout || EXEMPT.has(route.url)) return;
        route.onRequest = withHook(route.onRequest, arm);
        route.onResponse = withHook(route.onResponse, disarm);
        route.onRequestAbort = withHook(route.onRequestAbort, disarmOnAbort);
      });
    }

    if (options.rateLimit.max > 0) {
      await app.register(rateLimit, {
        max: options.rateLimit.max,
        timeWindow: options.rateLimit.windowMs,
        keyGenerator: (request) => rateLimitKey(options.keys, request),
        allowList: (request) => isExempt(request),
        errorResponseBuilder: (_request, context) => {
          const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
          return new DomainError("RATE_LIMITED", `Rate limit of ${context.max} requests per ${context.after} exceeded; retry in ${seconds} s`, undefined, seconds);
        },
      });
    }
  },
  { name: "memory-exchange-abuse-controls", fastify: "5.x" },
);
