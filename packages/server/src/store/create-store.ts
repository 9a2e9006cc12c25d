import type { Database } from "../db/open-database.js";
import { createMysqlStore } from "./mysql-store.js";
import { createSqliteStore } from "./sqlite-store.js";
import type { Store } from "./store.js";

export function createStore(database: Database): Store {
  return database.dialect === "mysql" ? createMysqlStore(database) : createSqliteStore(database);
}
