import { sql } from "drizzle-orm";
import type { Database } from "./open-database.js";
import type { Migration, MigrationStep } from "./migrations/steps.js";
import { mysqlMigrations } from "./migrations/mysql.js";
import { sqliteMigrations } from "./migrations/sqlite.js";

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

/** Applies every pending migration; safe to run at every start and from several instances at once. */
export async function migrate(database: Database): Promise<MigrationResult> {
  return database.dialect === "mysql" ? migrateMysql(database) : migrateSqlite(database);
}

export function latestMigrationId(dialect: Database["dialect"]): string {
  const list = dialect === "mysql" ? mysqlMigrations : sqliteMigrations;
  return list[list.length - 1]!.id;
}

async function migrateMysql(database: Extract<Database, { dialect: "mysql" }>): Promise<MigrationResult> {
  const connection = await database.pool.getConnection();
  // timeout 0: DDL on a large legacy table, or waiting for another instance's lock, may take long.
  const query = async <T>(text: string, params: unknown[] = []) => (await connection.query({ sql: text, values: params, timeout: 0 }))[0] as T;
  try {
    // Serialise concurrent starts (several instances on one database).
    await query("SELECT GET_LOCK('mx_schema_migrations', 60) AS locked");
    await query(`CREATE TABLE IF NOT EXISTS mx_schema_migrations (
  id VARCHAR(100) NOT NULL PRIMARY KEY,
  applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
)`);
    const done = new Set((await query<{ id: string }[]>("SELECT id FROM mx_schema_migrations")).map((r) => r.id));
    const result: MigrationResult = { applied: [], alreadyApplied: [] };
    for (const migration of mysqlMigrations) {
      if (done.has(migration.id)) {
        result.alreadyApplied.push(migration.id);
        continue;
      }
      for (const step of migration.steps) {
        if (await mysqlStepNeeded(step, query)) await query(stepSql(step, "mysql"));
      }
      await query("INSERT INTO mx_schema_migrations (id) VALUES (?)", [migration.id]);
      result.applied.push(migration.id);
    }
    return result;
  } finally {
    await query("SELECT RELEASE_LOCK('mx_schema_migrations')").catch(() => undefined);
    connection.release();
  }
}

async function mysqlStepNeeded(
  step: MigrationStep,
  query: <T>(text: string, params?: unknown[]) => Promise<T>,
): Promise<boolean> {
  if (step.kind === "sql") return true;
  if (step.kind === "addColumn") {
    const rows = await query<unknown[]>(
      "SELECT 1 FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?",
      [step.table, step.column],
    );
    return rows.length === 0;
  }
  const rows = await query<unknown[]>(
    "SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?",
    [step.table, step.name],
  );
  return rows.length === 0;
}

function stepSql(step: MigrationStep, dialect: Database["dialect"]): string {
  switch (step.kind) {
    case "sql":
      return step.sql;
    case "addColumn":
      return `ALTER TABLE ${step.table} ADD COLUMN ${step.column} ${step.definition}`;
    case "addIndex":
      return dialect === "mysql" ? `ALTER TABLE ${step.table} ADD ${step.definition}` : step.definition;
  }
}

async function migrateSqlite(database: Extract<Database, { dialect: "sqlite" }>): Promise<MigrationResult> {
  const { sqlite } = database;
  const result: MigrationResult = { applied: [], alreadyApplied: [] };
  // SQLite DDL is transactional: each migration commits whole or not at all.
  const apply = sqlite.transaction((migration: Migration) => {
    for (const step of migration.steps) {
      if (sqliteStepNeeded(step)) sqlite.exec(stepSql(step, "sqlite"));
    }
    sqlite.prepare("INSERT INTO mx_schema_migrations (id) VALUES (?)").run(migration.id);
  });
  sqlite.exec(`CREATE TABLE IF NOT EXISTS mx_schema_migrations (
  id TEXT PRIMARY KEY,
  applied_at INTEGER NOT NULL DEFAULT (cast(unixepoch('subsec') * 1000 as integer))
)`);
  const done = new Set(
    (sqlite.prepare("SELECT id FROM mx_schema_migrations").all() as { id: string }[]).map((r) => r.id),
  );
  for (const migration of sqliteMigrations) {
    if (done.has(migration.id)) {
      result.alreadyApplied.push(migration.id);
      continue;
    }
    apply.immediate(migration);
    result.applied.push(migration.id);
  }
  return result;

  function sqliteStepNeeded(step: MigrationStep): boolean {
    if (step.kind === "sql") return true;
    if (step.kind === "addColumn") {
      const columns = sqlite.prepare(`PRAGMA table_info(${step.table})`).all() as { name: string }[];
      return !columns.some((c) => c.name === step.column);
    }
    return !sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(step.name);
  }
}

/** True when the database answers and holds the latest migration (readiness). */
export async function isMigrated(database: Database): Promise<boolean> {
  const latest = latestMigrationId(database.dialect);
  if (database.dialect === "mysql") {
    const [rows] = await database.pool.query("SELECT id FROM mx_schema_migrations WHERE id = ?", [latest]);
    return (rows as unknown[]).length > 0;
  }
  return Boolean(database.db.get(sql`SELECT id FROM mx_schema_migrations WHERE id = ${latest}`));
}
