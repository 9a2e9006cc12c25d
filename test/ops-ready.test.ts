import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildServer, loadConfig, migrate, type MemoryExchangeServer } from "@memory-exchange/server";
import { createTestDatabase, mysqlAvailable, testDialects, type TestDatabase } from "../packages/server/test/support/databases.js";
import { startTestServer, type TestServer } from "./support/server.js";

/**
 * GET /ready: 200 when the database answers and is migrated, 503 otherwise
 * (with the error envelope and Retry-After), and back to 200 on recovery.
 * /health stays 200 throughout: it says the process is alive, not that it can serve.
 */

const quiet = { MEMORY_EXCHANGE_LOG_LEVEL: "silent", MEMORY_EXCHANGE_PORT: "0", MEMORY_EXCHANGE_HOST: "127.0.0.1" };

async function expectNotReady(server: MemoryExchangeServer) {
  const response = await server.app.inject({ method: "GET", url: "/ready", headers: { "x-request-id": "probe-1" } });
  expect(response.statusCode).toBe(503);
  expect(response.headers["retry-after"]).toBe("1");
  expect(response.json()).toEqual({
    success: false,
    error: "The database is unreachable or not migrated",
    code: "DATABASE_UNAVAILABLE",
    request_id: "probe-1",
  });
  expect((await server.app.inject("/health")).statusCode).toBe(200);
}

async function expectReady(server: MemoryExchangeServer) {
  const response = await server.app.inject("/ready");
  expect(response.statusCode).toBe(200);
  expect(response.json()).toEqual({ success: true, data: { status: "ready" } });
}

const withMysql = await mysqlAvailable();

for (const dialect of await testDialects()) {
  describe(`/ready on ${dialect}`, () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer(dialect);
    });
    afterAll(() => s.close());

    it("200 when the database is reachable and migrated, without an API key", async () => {
      await expectReady(s.server);
      const overHttp = await fetch(`${s.url}/ready`);
      expect(overHttp.status).toBe(200);
    });

    it("503 on a database that is not migrated yet, 200 once `migrate` has run", async () => {
      const database = await createTestDatabase(dialect);
      const server = await buildServer(loadConfig({ ...quiet, DATABASE_URL: database.url, MEMORY_EXCHANGE_MIGRATE_ON_START: "false" }));
      try {
        await expectNotReady(server);
        await migrate(server.database);
        await expectReady(server);
      } finally {
        await server.close();
        await database.drop();
      }
    });
  });
}

describe("/ready when the database goes away", () => {
  it("sqlite: 503 once the database cannot be used", async () => {
    const database = await createTestDatabase("sqlite");
    const server = await buildServer(loadConfig({ ...quiet, DATABASE_URL: database.url }));
    try {
      await expectReady(server);
      await server.database.close();
      await expectNotReady(server);
    } finally {
      await server.close();
      await database.drop();
    }
  });

  it.runIf(withMysql)("mysql: 503 while the server is unreachable, 200 again after it returns", async () => {
    const database = await createTestDatabase("mysql");
    const target = new URL(database.url);
    const proxy = await startTcpProxy(Number(target.port || 3306), target.hostname);
    const viaProxy = new URL(database.url);
    viaProxy.port = String(proxy.port);
    viaProxy.hostname = "127.0.0.1";
    const server = await buildServer(loadConfig({ ...quiet, DATABASE_URL: viaProxy.toString() }));
    try {
      await expectReady(server);
      await proxy.stop(); // the database host is gone: connections drop, new ones are refused
      await expectNotReady(server);
      await proxy.start();
      await expectReady(server);
    } finally {
      await server.close();
      await proxy.stop();
      await database.drop();
    }
  });

  it("mysql URL with nothing listening: the server still starts (migrations off) and reports 503", async () => {
    const port = await freePort();
    const server = await buildServer(
      loadConfig({ ...quiet, DATABASE_URL: `mysql://nobody@127.0.0.1:${port}/none`, MEMORY_EXCHANGE_MIGRATE_ON_START: "false" }),
    );
    try {
      await expectNotReady(server);
    } finally {
      await server.close();
    }
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP forwarder to the real database that can be switched off (listener closed, live sockets cut) and on again. */
async function startTcpProxy(targetPort: number, targetHost: string) {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const start = async () => {
    server = createServer((client) => {
      const upstream = connect(targetPort, targetHost);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server!.listen(port, "127.0.0.1", resolve));
  };
  const stop = async () => {
    const closing = server ? new Promise((resolve) => server!.close(resolve)) : Promise.resolve();
    server = undefined;
    for (const s of sockets) s.destroy();
    await closing;
  };
  await start();
  return { port, start, stop };
}
