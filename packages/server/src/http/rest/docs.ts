import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import type { OpenApiDocument } from "./openapi.js";

export const DOCS_PREFIX = "/docs";

/**
 * `GET /openapi.json` and a Swagger UI at `/docs` (assets bundled in the
 * package and served locally: no CDN). @fastify/swagger runs in static mode:
 * the document is the generated one, not rebuilt from Fastify routes.
 */
export async function registerDocs(app: FastifyInstance, document: OpenApiDocument): Promise<void> {
  // @fastify/swagger's types predate OpenAPI 3.1; static mode serves the object as it is.
  await app.register(fastifySwagger, { mode: "static", specification: { document: document as never } });
  await app.register(fastifySwaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: { deepLinking: true, persistAuthorization: false, displayOperationId: true },
  });

  // Serialized once everything is registered, so paths other modules add at startup are included.
  let body: string | undefined;
  app.addHook("onReady", async () => {
    body = JSON.stringify(document);
  });
  app.get("/openapi.json", (_request, reply) =>
    reply.type("application/json; charset=utf-8").send(body ?? JSON.stringify(document)),
  );
}
