import { Readable } from "node:stream";
import { idSchema } from "@memory-exchange/shared";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { alignedDigestParam, alignedPayloadLocation } from "../domain/alignment.js";
import { authenticate, requireScope, type Principal } from "../domain/api-keys.js";
import { DomainError, invalidInput, toDomainError } from "../errors.js";
import { ok, sendError } from "../http/envelope.js";
import { recordPayloadBytes } from "../http/metrics.js";
import { addOpenApiPaths } from "../http/rest/openapi.js";
import type { Services } from "../trpc/trpc.js";
import { parseByteRange } from "./byte-range.js";
import { entitledPayloadLocation, payloadSource, type PayloadTarget } from "./payload-access.js";
import { payloadOpenApiPaths } from "./payload-openapi.js";
import type { PayloadSource } from "./payload-source.js";
import { receiveUpload } from "./receive-upload.js";

export interface PayloadRoutesOptions {
  services: Services;
  /** MEMORY_EXCHANGE_MAX_UPLOAD_MB in bytes */
  maxUploadBytes: number;
  /** MEMORY_EXCHANGE_MAX_CONCURRENT_UPLOADS: uploads received at once; more answer 503 OVERLOADED (0 = no cap) */
  maxConcurrentUploads: number;
}

export const PAYLOAD_CONTENT_TYPE = "application/octet-stream";

/**
 * Transfers of a few GiB outlast the server's handler timeout (meant for JSON
 * calls), which would cut a stream mid-way: payload routes get an hour.
 */
const TRANSFER_TIMEOUT_MS = 60 * 60 * 1000;

/** Staleness after which an unfinished upload (a crash mid-upload) is purged at start. */
const STALE_UPLOAD_MS = 24 * 60 * 60 * 1000;

const header = (request: FastifyRequest) => (name: string) => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

async function principalWith(services: Services, request: FastifyRequest, scope: "read" | "trade"): Promise<Principal> {
  const principal = await authenticate(services.keys, header(request));
  requireScope(principal, scope);
  return principal;
}

function fail(reply: FastifyReply, error: unknown) {
  const domain = toDomainError(error);
  if (domain.code === "INTERNAL" || domain.code === "DATABASE_UNAVAILABLE") reply.request.log.error({ err: error }, "payload request failed");
  return sendError(reply, domain);
}

function parseId(value: unknown, path: string): number {
  const text = typeof value === "string" ? value.trim() : "";
  const parsed = idSchema.safeParse(/^\d{1,12}$/.test(text) ? Number(text) : NaN);
  if (!parsed.success) throw invalidInput(path, "must be a positive integer id");
  return parsed.data;
}

/**
 * Binary payload routes, beside the JSON REST API:
 * - `PUT /api/v1/payloads`: a safetensors KV-cache file, streamed into the store; answers its digest.
 * - `GET /api/v1/memory/:id/payload`, `GET /api/v1/reasoning-chain/:id/payload?transaction_id=`:
 *   the safetensors file for entitled users, with ETag, Content-Length and single-range requests.
 * Each path also answers without `/api/v1`, for the main app's path-rewriting proxy.
 */
export async function payloadRoutes(app: FastifyInstance, options: PayloadRoutesOptions): Promise<void> {
  const { services, maxUploadBytes, maxConcurrentUploads } = options;
  // Each upload in progress holds its chunk buffers and header in memory: their number is the memory bound.
  let uploading = 0;
  const { store } = services;

  // Bodies reach the handler as the raw stream (this plugin only): never buffered, never parsed as JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_request, payload, done) => done(null, payload));

  app.addHook("onReady", async () => {
    // Uploads cut short by a crash leave chunks under a temporary key; drop them (never an upload in progress).
    const purged = await store.payloads.purgeStaleUploads(new Date(Date.now() - STALE_UPLOAD_MS)).catch((err: unknown) => {
      app.log.warn({ err }, "could not purge stale payload uploads");
      return 0;
    });
    if (purged > 0) app.log.info({ purged }, "purged unfinished payload uploads");
  });

  const upload = async (request: FastifyRequest, reply: FastifyReply) => {
    let bodyConsumed = false;
    try {
      const principal = await principalWith(services, request, "trade");
      const type = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== PAYLOAD_CONTENT_TYPE) {
        throw new DomainError("UNSUPPORTED_MEDIA_TYPE", `Send the safetensors file as ${PAYLOAD_CONTENT_TYPE}`, [
          { path: "Content-Type", message: `must be ${PAYLOAD_CONTENT_TYPE}` },
        ]);
      }
      const lengthHeader = request.headers["content-length"];
      const declaredLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
      const body = (request.body as Readable | undefined) ?? Readable.from([]);
      if (maxConcurrentUploads > 0 && uploading >= maxConcurrentUploads)
        throw new DomainError("OVERLOADED", `${uploading} uploads are in progress, the most this instance receives at once; retry later`, undefined, 1);
      uploading++;
      const result = await receiveUpload(store.payloads, body, {
        ownerId: principal.userId,
        maxBytes: maxUploadBytes,
        declaredLength: Number.isSafeInteger(declaredLength) ? declaredLength : undefined,
      }).finally(() => uploading--);
      bodyConsumed = true;
      recordPayloadBytes("in", result.size);
      const { created, ...uploaded } = result;
      return reply.code(created ? 201 : 200).send(ok(uploaded));
    } catch (error) {
      // The client may still be sending: close the connection after the answer rather than read the rest.
      if (!bodyConsumed && !request.raw.readableEnded) void reply.header("connection", "close");
      return fail(reply, error);
    }
  };

  const download = (target: (request: FastifyRequest) => PayloadTarget) => async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      const principal = await principalWith(services, request, "read");
      const location = await entitledPayloadLocation(store, principal.userId, target(request));
      // ?aligned=<digest>: the item's payload aligned to a target model (the payloadUrl a purchase or use answered)
      const aligned = alignedDigestParam((request.query as { aligned?: unknown }).aligned);
      const source = aligned === undefined ? location : await alignedPayloadLocation(services.alignment, location, aligned);
      return await sendPayload(request, reply, await payloadSource(store, source));
    } catch (error) {
      return fail(reply, error);
    }
  };
  const memoryTarget = (request: FastifyRequest): PayloadTarget => ({
    kind: "memory",
    memoryId: parseId((request.params as { id?: string }).id, "id"),
  });
  const chainTarget = (request: FastifyRequest): PayloadTarget => {
    const query = request.query as { transaction_id?: string; transactionId?: string };
    const transaction = query.transaction_id ?? query.transactionId;
    return {
      kind: "chain",
      chainId: parseId((request.params as { id?: string }).id, "id"),
      ...(transaction === undefined ? {} : { transactionId: parseId(transaction, "transaction_id") }),
    };
  };

  if (app.hasDecorator("openApiDocument")) addOpenApiPaths(app.openApiDocument, payloadOpenApiPaths());

  for (const base of ["/api/v1", ""]) {
    app.put(`${base}/payloads`, { handlerTimeout: TRANSFER_TIMEOUT_MS }, upload);
    for (const [path, target] of [
      [`${base}/memory/:id/payload`, memoryTarget],
      [`${base}/reasoning-chain/:id/payload`, chainTarget],
    ] as const) {
      // HEAD gets its own route: Fastify's automatic one would read the whole stream to discard it.
      app.get(path, { exposeHeadRoute: false, handlerTimeout: TRANSFER_TIMEOUT_MS }, download(target));
      app.head(path, download(target));
    }
  }
}

function etagMatches(condition: string | undefined, etag: string): boolean {
  if (!condition) return false;
  return condition.split(",").some((tag) => {
    const t = tag.trim();
    return t === "*" || t === etag || t === `W/${etag}`;
  });
}

/** Sends a payload (or the requested byte range of it) as a stream; the content never changes, so its digest is its ETag. */
async function sendPayload(request: FastifyRequest, reply: FastifyReply, source: PayloadSource) {
  const etag = `"${source.digest}"`;
  void reply
    .header("etag", etag)
    .header("accept-ranges", "bytes")
    .header("cache-control", "private, no-cache")
    .header("content-type", PAYLOAD_CONTENT_TYPE)
    .header("content-disposition", `attachment; filename="${source.digest}.safetensors"`);
  if (etagMatches(request.headers["if-none-match"], etag)) return reply.code(304).send();

  // If-Range: a range applies only to the representation the client already holds part of.
  const ifRange = request.headers["if-range"];
  const rangeHeader = ifRange === undefined || ifRange === etag ? request.headers.range : undefined;
  const range = parseByteRange(rangeHeader, source.size);
  if (range.kind === "unsatisfiable") {
    void reply.header("content-range", `bytes */${source.size}`).header("content-type", "application/json; charset=utf-8");
    return sendError(reply, new DomainError("RANGE_NOT_SATISFIABLE", `The range ${String(rangeHeader)} lies outside the ${source.size}-byte payload`));
  }
  const [start, end] = range.kind === "partial" ? [range.start, range.end] : [0, source.size - 1];
  const length = end - start + 1;
  if (range.kind === "partial") void reply.code(206).header("content-range", `bytes ${start}-${end}/${source.size}`);
  void reply.header("content-length", String(length));
  if (request.method === "HEAD") return reply.send();

  async function* counted() {
    let sent = 0;
    try {
      for await (const piece of source.read(start, end)) {
        sent += piece.length;
        yield piece;
      }
    } finally {
      recordPayloadBytes("out", sent);
    }
  }
  // Two chunks of read-ahead at most: the socket's pace drives the database reads.
  return reply.send(Readable.from(counted(), { highWaterMark: 2 }));
}
