import { desc, sql } from "drizzle-orm";
import { int, mysqlTable, varchar } from "drizzle-orm/mysql-core";
import { drizzle } from "drizzle-orm/mysql2";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mysqlSelectRows } from "../src/store/prepared.js";
import { runSql } from "../src/store/mysql-transaction.js";
import { createTestDatabase, testDialects, type TestDatabase } from "./support/databases.js";

/**
 * How the MySQL store sends its statements: single-row reads and writes as
 * server-side prepared statements (parsed once per connection), LIMIT/OFFSET
 * bound as text, an undefined value as NULL; pages as text queries. A pool of
 * one connection, so the session's statement counters are the pool's.
 */
const hasMysql = (await testDialects()).includes("mysql");

const items = mysqlTable("items", { id: int("id").primaryKey(), name: varchar("name", { length: 20 }) });
const selection = { id: items.id, name: items.name };
const ph = sql.placeholder;

describe.runIf(hasMysql)("mysql statements", () => {
  let testDb: TestDatabase;
  let pool: mysql.Pool;
  const db = drizzle.mock();
  /** This session's count of a statement kind: Com_stmt_execute (prepared) or Com_select (text SELECTs, the SHOW included). */
  const sessionCount = async (name: string) => {
    const [rows] = await pool.query(`SHOW SESSION STATUS LIKE '${name}'`);
    return Number((rows as { Value: string }[])[0]!.Value);
  };
  /** The pool, recording what each `execute` was given. */
  const recording = () => {
    const calls: unknown[][] = [];
    const on = {
      execute: (...args: unknown[]) => (calls.push(args), (pool.execute as (...a: unknown[]) => unknown)(...args)),
      query: pool.query.bind(pool),
    } as unknown as mysql.Pool;
    return { on, calls };
  };

  beforeAll(async () => {
    testDb = await createTestDatabase("mysql");
    pool = mysql.createPool({ uri: testDb.url, connectionLimit: 1 });
    await pool.query("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))");
    await pool.query("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')");
  });
  afterAll(async () => {
    await pool?.end();
    await testDb?.drop();
  });

  const page = (on: mysql.Pool, protocol?: "prepared" | "text") =>
    mysqlSelectRows(on, db.select(selection).from(items).orderBy(desc(items.id)).limit(ph("limit")).offset(ph("offset")), selection, protocol);

  it("a prepared select runs as a prepared statement, its LIMIT and OFFSET bound as text", async () => {
    const { on, calls } = recording();
    const executed = await sessionCount("Com_stmt_execute");
    expect(await page(on)({ limit: 2, offset: 1 })).toEqual([
      { id: 3, name: "c" },
      { id: 2, name: "b" },
    ]);
    expect(await sessionCount("Com_stmt_execute")).toBe(executed + 1);
    expect(calls.at(-1)![1]).toEqual(["2", "1"]);
  });

  it("a text select prepares nothing and sends its LIMIT and OFFSET as numbers", async () => {
    const { on, calls } = recording();
    const executed = await sessionCount("Com_stmt_execute");
    expect(await page(on, "text")({ limit: 2, offset: 2 })).toEqual([
      { id: 2, name: "b" },
      { id: 1, name: "a" },
    ]);
    expect(await sessionCount("Com_stmt_execute")).toBe(executed);
    expect(calls).toEqual([]);
  });

  it("a single-row select binds its other values as given and only the trailing LIMIT as text", async () => {
    const { on, calls } = recording();
    const byId = mysqlSelectRows(on, db.select(selection).from(items).where(sql`${items.id} = ${ph("id")}`).limit(1), selection);
    expect(await byId({ id: 4 })).toEqual([{ id: 4, name: "d" }]);
    expect(calls.at(-1)![1]).toEqual([4, "1"]);
  });

  it("runSql runs a prepared statement and sends an undefined value as NULL", async () => {
    const executed = await sessionCount("Com_stmt_execute");
    const insert = db.insert(items).values({ id: ph("id"), name: ph("name") }).toSQL();
    await runSql(pool, insert, { id: 5, name: undefined });
    expect(await sessionCount("Com_stmt_execute")).toBe(executed + 1);
    const [rows] = await pool.query("SELECT id, name FROM items WHERE id = 5");
    expect(rows).toEqual([{ id: 5, name: null }]);
  });
});
