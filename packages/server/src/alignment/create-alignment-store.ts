import type { Database } from "../db/open-database.js";
import type { AlignmentStore } from "./alignment-store.js";
import { createMysqlAlignmentStore } from "./mysql-alignment-store.js";
import { createSqliteAlignmentStore } from "./sqlite-alignment-store.js";

export function createAlignmentStore(database: Database): AlignmentStore {
  return database.dialect === "mysql" ? createMysqlAlignmentStore(database) : createSqliteAlignmentStore(database);
}
