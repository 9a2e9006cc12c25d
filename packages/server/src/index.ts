export { buildServer, type MemoryExchangeServer } from "./http/build-server.js";
export { loadConfig, parseDatabaseUrl, type Config, type DatabaseConfig } from "./config.js";
export { openDatabase, type Database } from "./db/open-database.js";
export { migrate } from "./db/migrate.js";
export { createStore } from "./store/create-store.js";
export type { Store } from "./store/store.js";
export type { AppRouter, RouterInputs, RouterOutputs } from "./trpc/root.js";
export { createApiKey, listApiKeys, revokeApiKey, hashApiKey, type Principal } from "./domain/api-keys.js";
