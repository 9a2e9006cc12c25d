import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDatabaseUrl } from "../src/config.js";
import { migrate } from "../src/db/migrate.js";
import { openDatabase, type MysqlDatabase } from "../src/db/open-database.js";
import { adminConnection, createTestDatabase, testDialects, type TestDatabase } from "./support/databases.js";

/**
 * DATABASE_URL's `?socket=` (and the Go DSN's `unix(…)`): the pool reaches a
 * server on this host through its Unix socket. The server names its socket
 * (`@@socket`); a server elsewhere has none here, and the suite says so.
 */
const hasMysql = (await testDialects()).includes("mysql");
const socket = hasMysql ? await serverSocket() : undefined;

async function serverSocket(): Promise<string | undefined> {
  const admin = await adminConnection();
  try {
    const [rows] = await admin.query("SELECT @@socket AS socket");
    const path = (rows as { socket: string | null }[])[0]?.socket;
    return path && existsSync(path) ? path : undefined;
  } finally {
    await admin.end();
  }
}

describe.runIf(hasMysql)("MySQL through a Unix socket", () => {
  let testDb: TestDatabase;
  const opened: MysqlDatabase[] = [];
  const open = async (url: string) => {
    const database = await openDatabase(parseDatabaseUrl(url));
    if (database.dialect !== "mysql") throw new Error("expected MySQL");
    opened.push(database);
    return database;
  };
  /** How the server sees this session's client: `localhost` over a socket, `address:port` over TCP. */
  const clientHost = async (database: MysqlDatabase) => {
    const [rows] = await database.pool.query("SELECT HOST AS host FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()");
    return (rows as { host: string }[])[0]!.host;
  };

  beforeAll(async () => {
    testDb = await createTestDatabase("mysql");
  });
  afterAll(async () => {
    for (const database of opened) await database.close();
    await testDb?.drop();
  });

  it.runIf(socket)(`?socket= connects through ${socket ?? "the server's socket"}, migrates and serves queries`, async () => {
    const url = new URL(testDb.url);
    url.searchParams.set("socket", socket!);
    const database = await open(url.toString());
    expect(await clientHost(database)).toBe("localhost");
    await migrate(database);
    const [rows] = await database.pool.query("SELECT COUNT(*) AS n FROM memory_exchanges");
    expect(rows).toEqual([{ n: 0 }]);

    const tcp = await open(testDb.url);
    expect(await clientHost(tcp)).toMatch(/:\d+$/);
  });

  it.runIf(socket)("the Go DSN's unix(…) form reaches the same server", async () => {
    const url = new URL(testDb.url);
    const dsn = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}@unix(${socket})${url.pathname}`;
    expect(await clientHost(await open(dsn))).toBe("localhost");
  });

  it("a socket path that does not exist fails to connect (ENOENT)", async () => {
    const url = new URL(testDb.url);
    url.searchParams.set("socket", "/nonexistent/mysqld.sock");
    const database = await open(url.toString());
    await expect(database.pool.query("SELECT 1")).rejects.toMatchObject({ code: "ENOENT" });
  });
});
