import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { guardQueryTimeouts, isQueryTimeout } from "../src/db/query-timeout.js";
import { createTestDatabase, testDialects, type TestDatabase } from "./support/databases.js";

/**
 * The query-timeout guard on a real MariaDB/MySQL pool of one connection, so
 * "the same connection" and "a fresh one" can be told apart by CONNECTION_ID().
 */
const hasMysql = (await testDialects()).includes("mysql");

describe.runIf(hasMysql)("query timeouts (mysql)", () => {
  let testDb: TestDatabase;
  let pool: mysql.Pool;
  const connectionId = async () => ((await pool.query("SELECT CONNECTION_ID() AS id"))[0] as { id: number }[])[0]!.id;

  beforeAll(async () => {
    testDb = await createTestDatabase("mysql");
    pool = guardQueryTimeouts(mysql.createPool({ uri: testDb.url, connectionLimit: 1 }), 300);
  });
  afterAll(async () => {
    await pool?.end();
    await testDb?.drop();
  });

  it("pool query and execute answer [rows, fields], placeholders filled", async () => {
    const [rows, fields] = await pool.execute("SELECT ? + 1 AS n", [41]);
    expect(rows).toEqual([{ n: 42 }]);
    expect((fields as { name: string }[]).map((f) => f.name)).toEqual(["n"]);
    const [named] = await pool.query({ sql: "SELECT ? AS s", values: ["x"] });
    expect(named).toEqual([{ s: "x" }]);
  });

  it("a failing statement rejects with the driver's error and gives its connection back", async () => {
    const before = await connectionId();
    const error = await pool.execute("SELECT nope FROM no_such_table").catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe("ER_NO_SUCH_TABLE");
    expect(await connectionId()).toBe(before);
  });

  it("a statement past the timeout rejects with PROTOCOL_SEQUENCE_TIMEOUT and its connection is replaced, not reused", async () => {
    const before = await connectionId();
    const started = Date.now();
    const error = await pool.query("SELECT SLEEP(3)").catch((e: unknown) => e);
    expect(isQueryTimeout(error)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
    // Released instead, the next query would queue behind the SLEEP on the same connection.
    expect(await connectionId()).not.toBe(before);
  });

  it("a statement's own timeout wins over the guard's", async () => {
    const [rows] = await pool.query({ sql: "SELECT SLEEP(0.5) AS slept", timeout: 2_000 });
    expect(rows).toEqual([{ slept: 0 }]);
  });

  it("a transaction's connection (pool.getConnection) is guarded too", async () => {
    const connection = await pool.getConnection();
    const [[{ id }]] = (await connection.query("SELECT CONNECTION_ID() AS id")) as unknown as [[{ id: number }]];
    const error = await connection.query("SELECT SLEEP(3)").catch((e: unknown) => e);
    expect(isQueryTimeout(error)).toBe(true);
    // Destroyed by the guard (the caller does not release it): the pool's one slot opens a fresh connection.
    expect(await connectionId()).not.toBe(id);
  });
});
