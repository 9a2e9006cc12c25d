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
  // Callback-style hooks: these run on every request, and an async hook costs a promise and a tick each.
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (draining && !reply.raw.headersSent) void reply.header("connection", "close");
    done(null, payload);
  });
  app.addHook("onResponse", (request, _reply, done) => {
    if (draining) request.raw.socket?.end();
    done();
  });
}
