import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { OpenApiDocument } from "./openapi.js";

export const DOCS_PREFIX = "/docs";

/**
 * `GET /openapi.json` and a Swagger UI at `/docs` (assets bundled in the
 * package and served locally: no CDN). @fastify/swagger runs in static mode:
 * the document is the generated one, not rebuilt from Fastify routes.
 *
 * The UI plugins (with their static file server, glob and YAML modules:
 * about 5 MB of RSS) load on the first `/docs` request, into a Fastify
 * instance of their own that `/docs` requests are passed to: most servers
 * never show their docs, and plugins cannot join a server once it listens.
 */
export async function registerDocs(app: FastifyInstance, document: OpenApiDocument): Promise<void> {
  // Serialized on first request, so paths other modules add at startup are included.
  let body: string | undefined;
  app.get("/openapi.json", (_request, reply) => reply.type("application/json; charset=utf-8").send((body ??= JSON.stringify(document))));

  let docs: Promise<FastifyInstance> | undefined;
  const forward = async (request: FastifyRequest, reply: FastifyReply) => {
    // A failed load is tried again by the next request.
    docs ??= docsServer(document).catch((error: unknown) => {
      docs = undefined;
      throw error;
    });
    const server = await docs;
    // Always GET: for a HEAD request the main server drops the body itself, keeping its length.
    const response = await server.inject({ method: "GET", url: request.url, headers: request.headers });
    // The main server's 404 keeps its error envelope.
    if (response.statusCode === 404) return reply.callNotFound();
    for (const [name, value] of Object.entries(response.headers))
      if (value !== undefined && !HOP_BY_HOP.has(name)) void reply.header(name, value);
    return reply.code(response.statusCode).send(response.rawPayload.length > 0 ? response.rawPayload : undefined);
  };
  app.get(DOCS_PREFIX, forward);
  app.get(`${DOCS_PREFIX}/*`, forward);
}

/** Set by the main server for its own connection, not copied from the docs server's answer. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "date"]);

async function docsServer(document: OpenApiDocument): Promise<FastifyInstance> {
  const [{ default: fastifySwagger }, { default: fastifySwaggerUi }] = await Promise.all([
    import("@fastify/swagger"),
    import("@fastify/swagger-ui"),
  ]);
  const docs = Fastify({ logger: false });
  // @fastify/swagger's types predate OpenAPI 3.1; static mode serves the object as it is.
  await docs.register(fastifySwagger, { mode: "static", specification: { document: document as never } });
  await docs.register(fastifySwaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: { deepLinking: true, persistAuthorization: false, displayOperationId: true },
  });
  await docs.ready();
  return docs;
}
