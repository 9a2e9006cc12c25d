import BetterSqlite3 from "better-sqlite3";
import { describe, expect, test } from "vitest";
import { openDatabase } from "../src/db/open-database.js";
import { refreshStatistics } from "../src/db/sqlite-statistics.js";
import { tempDatabaseFiles } from "./support/temp-files.js";

/**
 * SQLite statistics without STAT4 samples: with samples loaded, every bound
 * call of a statement comparing a parameter to an indexed column is planned
 * again (sqlite-statistics.ts). The per-index averages stay and still lead
 * the planner to the index.
 */

/** A fresh database file in a directory removed after the test. */
const databaseFile = tempDatabaseFiles("mx-stats-");

/** A file database with an indexed column (100 values), analyzed the plain way: STAT4 samples included. */
function analyzedDatabase() {
  const file = databaseFile();
  const sqlite = new BetterSqlite3(file);
  sqlite.exec("CREATE TABLE listings (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, price INTEGER NOT NULL)");
  sqlite.exec("CREATE INDEX listings_kind_idx ON listings (kind)");
  const insert = sqlite.prepare("INSERT INTO listings (kind, price) VALUES (?, ?)");
  sqlite.transaction(() => {
    for (let i = 0; i < 5_000; i++) insert.run(`kind-${i % 100}`, i);
  })();
  sqlite.exec("ANALYZE");
  return { file, sqlite };
}

const count = (sqlite: BetterSqlite3.Database, table: string) => sqlite.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
const plan = (sqlite: BetterSqlite3.Database) =>
  (sqlite.prepare("EXPLAIN QUERY PLAN SELECT id FROM listings WHERE kind = ?").all("kind-7") as { detail: string }[]).map((row) => row.detail).join("; ");

describe("refreshStatistics", () => {
  test("drops the STAT4 samples, keeps the per-index averages and the index plan", () => {
    const { sqlite } = analyzedDatabase();
    expect(count(sqlite, "sqlite_stat4")).toBeGreaterThan(0); // better-sqlite3's SQLite is built with STAT4

    refreshStatistics(sqlite);

    expect(count(sqlite, "sqlite_stat4")).toBe(0);
    expect(count(sqlite, "sqlite_stat1")).toBeGreaterThan(0);
    expect(plan(sqlite)).toMatch(/USING (COVERING )?INDEX listings_kind_idx/);
    sqlite.close();
  });

  test("a database without statistics or samples is left as it is", () => {
    const sqlite = new BetterSqlite3(databaseFile());
    sqlite.exec("CREATE TABLE t (id INTEGER PRIMARY KEY)");

    expect(() => refreshStatistics(sqlite)).not.toThrow();
    expect(sqlite.prepare("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'sqlite_stat%'").pluck().get()).toBe(0);
    sqlite.close();
  });

  test("opening the service's database drops samples an earlier ANALYZE left", async () => {
    const { file, sqlite } = analyzedDatabase();
    sqlite.close();

    const database = await openDatabase({ dialect: "sqlite", file });
    try {
      if (database.dialect !== "sqlite") throw new Error("expected SQLite");
      expect(count(database.sqlite, "sqlite_stat4")).toBe(0);
      expect(count(database.sqlite, "sqlite_stat1")).toBeGreaterThan(0);
    } finally {
      await database.close();
    }
  });
});
