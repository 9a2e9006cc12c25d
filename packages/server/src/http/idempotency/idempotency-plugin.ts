import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { Database } from "../../db/open-database.js";
import { presentedApiKey } from "../../domain/api-keys.js";
import { DomainError } from "../../errors.js";
import type { Services } from "../../trpc/trpc.js";
import { IdempotencyKeys, type Claim } from "./idempotency-keys.js";
import { createIdempotencyStore } from "./idempotency-store.js";
import { withHook } from "../route-hooks.js";

export interface IdempotencyPluginOptions {
  services: Services;
  database: Database;
  /** how long a key is remembered; default 24 h */
  ttlMs?: number;
  /** how long before an unfinished request's record may be taken over (its process died) */
  leaseMs: number;
}

export const IDEMPOTENCY_HEADER = "idempotency-key";
export const REPLAYED_HEADER = "idempotent-replayed";
const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;
const DAY_MS = 24 * 60 * 60 * 1000;

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseKey(request: FastifyRequest): string | undefined {
  const raw = request.headers[IDEMPOTENCY_HEADER];
  if (raw === undefined) return undefined;
  const value = Array.isArray(raw) ? undefined : raw.trim();
  if (value === undefined || !KEY_FORMAT.test(value)) {
    const message = "must be 1 to 255 visible ASCII characters, sent once";
    throw new DomainError("INVALID_INPUT", `Idempotency-Key: ${message}`, [{ path: "Idempotency-Key", message }]);
  }
  return value;
}

/**
 * What makes two requests "the same": method, URL, the user acted for and
 * the body as received (tRPC bodies arrive as text; REST bodies parsed, so
 * re-serialized). A streamed body cannot be read here: its type and length stand in.
 */
function requestHash(request: FastifyRequest): string {
  const hash = createHash("sha256");
  for (const part of [request.method, request.url, headerValue(request, "x-user-id") ?? "", headerValue(request, "content-type") ?? ""])
    hash.update(part).update("\0");
  const body: unknown = request.body;
  if (body === undefined || body === null) hash.update("");
  else if (typeof body === "string" || body instanceof Uint8Array) hash.update(body);
  else if (typeof (body as { pipe?: unknown }).pipe === "function") hash.update(`stream:${headerValue(request, "content-length") ?? "?"}`);
  else hash.update(JSON.stringify(body));
  return hash.digest("hex");
}

const isWebResponse = (payload: unknown): payload is Response =>
  typeof payload === "object" && payload !== null && Object.prototype.toString.call(payload) === "[object Response]";

/** A handler timeout answers 503 while the handler may still run and commit: such a record must stay locked. */
function isTimeout(statusCode: number, body: Uint8Array): boolean {
  if (statusCode !== 503) return false;
  try {
    return (JSON.parse(Buffer.from(body).toString("utf8")) as { code?: unknown }).code === "TIMEOUT";
  } catch {
    return false;
  }
}

/**
 * `Idempotency-Key` on every POST (tRPC mutations and REST alike), with
 * Stripe's semantics: scoped to the API key, remembered 24 h; the same key
 * and request replays the first response (status and body, header
 * `Idempotent-Replayed: true`); a different request → 409
 * IDEMPOTENCY_KEY_REUSED; a request racing the first → 409
 * IDEMPOTENCY_KEY_IN_USE (retryable). 5xx outcomes are not remembered, so a
 * retry with the same key executes again. Requests without a valid key are
 * left to the route, which answers 401.
 */
export const idempotencyPlugin = fp<IdempotencyPluginOptions>(
  async (app, options) => {
    const keys = new IdempotencyKeys(createIdempotencyStore(options.database), {
      ttlMs: options.ttlMs ?? DAY_MS,
      leaseMs: options.leaseMs,
      onSweepError: (err) => app.log.warn({ err }, "idempotency sweep failed"),
    });
    const claims = new WeakMap<FastifyRequest, Extract<Claim, { kind: "execute" }>>();

    const claimOrReplay = async (request: FastifyRequest, reply: FastifyReply) => {
      if (request.method !== "POST") return;
      const key = parseKey(request);
      if (key === undefined) return;
      const apiKey = presentedApiKey((name) => headerValue(request, name));
      const row = apiKey ? await options.services.keys.verify(apiKey) : null;
      if (!row) return;

      const claim = await keys.claim(row.id, key, requestHash(request));
      switch (claim.kind) {
        case "execute":
          claims.set(request, claim);
          return;
        case "replay":
          void reply.code(claim.statusCode).header(REPLAYED_HEADER, "true");
          if (claim.contentType) void reply.header("content-type", claim.contentType);
          return reply.send(claim.body);
        case "mismatch":
          throw new DomainError("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was already used with a different request");
        case "in_flight":
          throw new DomainError("IDEMPOTENCY_KEY_IN_USE", "A request with this Idempotency-Key is still being processed; retry shortly", undefined, 1);
      }
    };

    const record = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      const claim = claims.get(request);
      if (!claim) return payload;
      claims.delete(request);

      let statusCode = reply.statusCode;
      let contentType = reply.getHeader("content-type");
      let body: Uint8Array | undefined;
      let forward: unknown = payload;
      if (isWebResponse(payload)) {
        // tRPC answers with a fetch Response: read it once, forward an identical one.
        statusCode = payload.status;
        contentType = payload.headers.get("content-type") ?? undefined;
        body = new Uint8Array(await payload.arrayBuffer());
        forward = new Response(body, { status: payload.status, statusText: payload.statusText, headers: payload.headers });
      } else if (typeof payload === "string") body = Buffer.from(payload, "utf8");
      else if (payload instanceof Uint8Array) body = payload;
      else if (payload === null || payload === undefined) body = new Uint8Array(0);

      try {
        if (body === undefined) await keys.release(claim); // a stream cannot be replayed
        else if (statusCode >= 500) {
          if (!isTimeout(statusCode, body)) await keys.release(claim);
        } else await keys.complete(claim, statusCode, typeof contentType === "string" ? contentType : null, body);
      } catch (err) {
        // The response still goes out; the record stays in flight until its lease ends.
        request.log.warn({ err }, "could not record the idempotent response");
      }
      return forward;
    };

    // Only routes that take POST carry the hooks (a route accepting several methods still checks),
    // so register this plugin before the routes, like the abuse controls.
    app.addHook("onRoute", (route) => {
      if (![route.method].flat().includes("POST")) return;
      route.preHandler = withHook(route.preHandler, claimOrReplay);
      route.onSend = withHook(route.onSend, record);
    });
  },
  { name: "memory-exchange-idempotency", fastify: "5.x" },
);
