import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { parseDatabaseUrl, type DatabaseConfig } from "../../src/config.js";
import { migrate } from "../../src/db/migrate.js";
import { openDatabase, type Database } from "../../src/db/open-database.js";

/**
 * Test databases: a fresh SQLite file or a fresh MariaDB/MySQL database per
 * call, so every test runs on its own data. MySQL comes from MX_TEST_MYSQL_URL
 * (default: root@127.0.0.1:3306). Under CI (CI=true) or MX_REQUIRE_MYSQL=1 an
 * unreachable server fails the run instead of skipping the MySQL suites.
 */
export type Dialect = "sqlite" | "mysql";

export interface TestDatabase {
  dialect: Dialect;
  url: string;
  config: DatabaseConfig;
  drop(): Promise<void>;
}

const MYSQL_URL = process.env.MX_TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";
const REQUIRE_MYSQL = process.env.CI === "true" || process.env.MX_REQUIRE_MYSQL === "1";

let probe: Promise<boolean> | undefined;

export function mysqlAvailable(): Promise<boolean> {
  probe ??= (async () => {
    try {
      const connection = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 2000 });
      await connection.end();
      return true;
    } catch (error) {
      if (REQUIRE_MYSQL) throw new Error(`MySQL/MariaDB required (CI) but unreachable at ${MYSQL_URL}: ${(error as Error).message}`);
      console.warn(`[memory-exchange tests] MySQL/MariaDB unreachable at ${MYSQL_URL}: skipping MySQL suites`);
      return false;
    }
  })();
  return probe;
}

/** The dialects to run suites against: SQLite always, MySQL when reachable (required in CI). */
export async function testDialects(): Promise<Dialect[]> {
  return (await mysqlAvailable()) ? ["sqlite", "mysql"] : ["sqlite"];
}

export async function adminConnection() {
  return mysql.createConnection({ uri: MYSQL_URL, multipleStatements: true });
}

export async function createTestDatabase(dialect: Dialect): Promise<TestDatabase> {
  if (dialect === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "mx-test-"));
    const url = `file:${join(dir, "test.db")}`;
    return { dialect, url, config: parseDatabaseUrl(url), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `mx_test_${randomBytes(6).toString("hex")}`;
  const admin = await adminConnection();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const base = new URL(MYSQL_URL);
  base.pathname = `/${name}`;
  const url = base.toString();
  return {
    dialect,
    url,
    config: parseDatabaseUrl(url, 20),
    drop: async () => {
      const connection = await adminConnection();
      await connection.query(`DROP DATABASE IF EXISTS ${name}`);
      await connection.end();
    },
  };
}

export interface MigratedTestDatabase {
  testDb: TestDatabase;
  database: Database;
  /** closes the database, then drops it */
  close(): Promise<void>;
}

/** A fresh test database, migrated and opened. */
export async function openMigratedDatabase(dialect: Dialect): Promise<MigratedTestDatabase> {
  const testDb = await createTestDatabase(dialect);
  const database = await openDatabase(testDb.config);
  await migrate(database);
  return {
    testDb,
    database,
    close: async () => {
      await database.close();
      await testDb.drop();
    },
  };
}
