/**
 * A migration is a list of idempotent steps: each checks the live schema
 * before changing it, so a migration interrupted half-way (MySQL DDL is not
 * transactional) simply finishes on the next run, and a database that already
 * holds the legacy tables is extended, never recreated.
 */
export type MigrationStep =
  | { kind: "sql"; sql: string }
  | { kind: "addColumn"; table: string; column: string; definition: string }
  | { kind: "addIndex"; table: string; name: string; definition: string };

export interface Migration {
  id: string;
  steps: MigrationStep[];
}

export const idempotentSql = (sql: string): MigrationStep => ({ kind: "sql", sql });
export const addColumn = (table: string, column: string, definition: string): MigrationStep => ({
  kind: "addColumn",
  table,
  column,
  definition,
});
export const addIndex = (table: string, name: string, definition: string): MigrationStep => ({
  kind: "addIndex",
  table,
  name,
  definition,
});
