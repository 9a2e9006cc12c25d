import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "@memory-exchange/server";
import { adminConnection, createTestDatabase, testDialects, type TestDatabase } from "../packages/server/test/support/databases.js";
import { kvCache } from "./support/fixtures.js";
import { ensureServerBuilt, mintKey, startServerProcess, type ServerProcess } from "./support/server-process.js";

/**
 * Request ids and logs, read from the binary's real stdout: every response
 * carries `x-request-id` (the caller's when it is well-formed), log lines are
 * pino JSON in production and carry the same id, and no line ever holds an
 * API key or payload data, not even when the database fails mid-publish.
 */

beforeAll(ensureServerBuilt, 600_000);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MARKER = "payload-marker-7f3a9c";

const publishBody = (description: string) =>
  JSON.stringify({
    json: {
      memoryType: "kv_cache",
      kvCacheData: { ...kvCache("llama-3-8b", 2), metadata: { note: MARKER } },
      price: 4.5,
      description,
    },
  });

/** Renames a table the publish path writes to, so the INSERT fails with bound values in the driver error. */
async function withTableMissing(database: TestDatabase, run: () => Promise<void>) {
  const rename = async (from: string, to: string) => {
    if (database.config.dialect === "sqlite") {
      const other = await openDatabase(database.config);
      if (other.dialect === "sqlite") other.sqlite.exec(`ALTER TABLE ${from} RENAME TO ${to}`);
      await other.close();
    } else {
      const admin = await adminConnection();
      await admin.query(`RENAME TABLE \`${database.config.database}\`.${from} TO \`${database.config.database}\`.${to}`);
      await admin.end();
    }
  };
  await rename("memory_exchanges", "memory_exchanges_away");
  try {
    await run();
  } finally {
    await rename("memory_exchanges_away", "memory_exchanges");
  }
}

for (const dialect of await testDialects()) {
  describe(`request ids and logs on ${dialect}`, () => {
    let database: TestDatabase;
    let server: ServerProcess;
    let key: string;
    beforeAll(async () => {
      database = await createTestDatabase(dialect);
      const env = { DATABASE_URL: database.url, NODE_ENV: "production" };
      key = (await mintKey(env, 77)).key;
      server = await startServerProcess(env);
    });
    afterAll(async () => {
      expect(await server.stop()).toEqual({ code: 0, signal: null });
      await database.drop();
    });

    it("generates a request id when none is sent and logs the request under it: one access line, when the response is out", async () => {
      const response = await fetch(`${server.url}/health?probe=1`);
      const id = response.headers.get("x-request-id")!;
      expect(id).toMatch(UUID);
      await server.waitForLine((l) => l.includes(`"reqId":"${id}"`) && l.includes("request completed"));
      const lines = server.logs().filter((l) => l.reqId === id);
      expect(lines.map((l) => l.msg)).toEqual(["request completed"]);
      expect(lines[0]).toMatchObject({ level: 30, req: { method: "GET", url: "/health?probe=1" }, res: { statusCode: 200 }, responseTime: expect.any(Number) });
    });

    it("accepts a well-formed caller id and replaces a malformed one", async () => {
      const given = await fetch(`${server.url}/health`, { headers: { "x-request-id": "edge-7f.3a:9c_01" } });
      expect(given.headers.get("x-request-id")).toBe("edge-7f.3a:9c_01");
      for (const bad of ["has spaces in it", "x".repeat(129), "semi;colon"]) {
        const replaced = await fetch(`${server.url}/health`, { headers: { "x-request-id": bad } });
        expect(replaced.headers.get("x-request-id")).toMatch(UUID);
      }
    });

    it("error bodies carry the same id: REST envelope request_id and tRPC error data.requestId", async () => {
      const missing = await fetch(`${server.url}/no/such/route`, { headers: { "x-request-id": "rest-404" } });
      expect(missing.headers.get("x-request-id")).toBe("rest-404");
      expect(await missing.json()).toMatchObject({ success: false, code: "NOT_FOUND", request_id: "rest-404" });

      const unauthenticated = await fetch(`${server.url}/trpc/stats.get`, { headers: { "x-request-id": "trpc-401" } });
      expect(unauthenticated.status).toBe(401);
      expect(unauthenticated.headers.get("x-request-id")).toBe("trpc-401");
      const body = (await unauthenticated.json()) as { error: { json: { data: { requestId: string; code: string } } } };
      expect(body.error.json.data).toMatchObject({ code: "UNAUTHENTICATED", requestId: "trpc-401" });
    });

    it("never logs API keys or payload data, also when the database rejects the write", async () => {
      const ok = await fetch(`${server.url}/trpc/memory.publish`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "x-request-id": "publish-ok" },
        body: publishBody(`ok ${MARKER}`),
      });
      expect(ok.status).toBe(200);
      const viaHeader = await fetch(`${server.url}/trpc/stats.get`, { headers: { "x-api-key": key, "x-request-id": "stats-x-api-key" } });
      expect(viaHeader.status).toBe(200);

      await withTableMissing(database, async () => {
        const failed = await fetch(`${server.url}/trpc/memory.publish`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "x-request-id": "publish-db-error" },
          body: publishBody(`failing ${MARKER}`),
        });
        expect(failed.status).toBe(500);
        const text = await failed.text();
        expect(text).not.toContain(MARKER);
        expect(text).not.toMatch(/memory_exchanges|insert|sql/i);
      });

      await server.waitForLine((l) => l.includes('"reqId":"publish-db-error"') && l.includes("request completed"));
      const failure = server.logs().find((l) => l.msg === "procedure failed" && l.requestId === "publish-db-error");
      expect(failure, "the failure is logged with its cause").toBeDefined();
      const err = failure!.err as { type: string; message: string; stack: string };
      // mysql2 through Drizzle: "Failed query: insert into `memory_exchanges` …" (its params line dropped);
      // better-sqlite3 fails at prepare: "no such table: memory_exchanges".
      expect(err.message).toMatch(/memory_exchanges/);
      expect(err.stack).toMatch(/\n\s+at /);

      // Every line is JSON in production, and none holds a key or payload data.
      expect(server.output.filter((l) => l.trim() !== "" && !l.startsWith("{"))).toEqual([]);
      const all = server.output.join("\n");
      expect(all).not.toContain(key);
      expect(all).not.toContain(key.slice(3));
      expect(all).not.toContain(MARKER);
      expect(all).not.toMatch(/params:/);
      expect(all).not.toContain("1000.123456789"); // a value from the fixture's tensors
    });
  });
}

describe("development logs", () => {
  it("are pretty-printed (not JSON) with NODE_ENV=development", async () => {
    const database = await createTestDatabase("sqlite");
    const server = await startServerProcess({ DATABASE_URL: database.url, NODE_ENV: "development" });
    try {
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      const listening = await server.waitForLine((l) => l.includes("Server listening at"));
      expect(() => JSON.parse(listening)).toThrow();
      expect(listening).toMatch(/INFO/);
    } finally {
      expect((await server.stop()).code).toBe(0);
      await database.drop();
    }
  });
});

describe("the err serializer", () => {
  it("drops bound values (Drizzle params, mysql2 sql) and keeps the query text, driver codes and frames", async () => {
    const { serializeError } = await import("../packages/server/src/http/log-serializers.js");
    const driver = Object.assign(new Error("Table 'db.memory_exchanges' doesn't exist"), {
      code: "ER_NO_SUCH_TABLE",
      errno: 1146,
      sqlState: "42S02",
      sql: `insert into memory_exchanges values ('${MARKER}')`,
    });
    const query = Object.assign(new Error(`Failed query: insert into memory_exchanges values (?)\nparams: ${MARKER}`), {
      query: "insert into memory_exchanges values (?)",
      params: [MARKER],
      cause: driver,
    });
    const out = serializeError(query);
    expect(JSON.stringify(out)).not.toContain(MARKER);
    expect(out).toMatchObject({
      message: "Failed query: insert into memory_exchanges values (?)",
      cause: { code: "ER_NO_SUCH_TABLE", errno: 1146, sqlState: "42S02", message: "Table 'db.memory_exchanges' doesn't exist" },
    });
    expect(out.stack).toMatch(/^Error: Failed query: insert into memory_exchanges values \(\?\)\n\s+at /);
  });
});
