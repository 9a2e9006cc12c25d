import type { FastifyInstance } from "fastify";

/**
 * Draining on close. `server.close()` stops accepting and closes the
 * connections idle at that moment; a connection busy with a request (say a
 * large upload) stays open, and Node would keep it alive after its response
 * until the keep-alive timeout, holding the shutdown for up to a minute.
 * Here the response of every request finishing during the drain says
 * `Connection: close`, and its socket is ended once the response is out.
 */
export function closeConnectionsWhenDrained(app: FastifyInstance): void {
  let draining = false;
  app.addHook("preClose", async () => {
    draining = true;
  });
  app.addHook("onSend", async (_request, reply, payload) => {
    if (draining && !reply.raw.headersSent) void reply.header("connection", "close");
    return payload;
  });
  app.addHook("onResponse", async (request) => {
    if (draining) request.raw.socket?.end();
  });
}
