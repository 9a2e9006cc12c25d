import { createMemoryExchangeClient, type MemoryExchangeClient } from "@memory-exchange/client";
import type { Scope } from "@memory-exchange/shared";
import { buildServer, createApiKey, loadConfig, type Config, type MemoryExchangeServer } from "@memory-exchange/server";
import { createTestDatabase, type Dialect, type TestDatabase } from "../../packages/server/test/support/databases.js";

export { testDialects, type Dialect } from "../../packages/server/test/support/databases.js";

export interface TestServer {
  dialect: Dialect;
  url: string;
  server: MemoryExchangeServer;
  database: TestDatabase;
  config: Config;
  /** Mints a key through the domain (as the CLI does). */
  createKey(userId: number, scopes?: Scope[]): Promise<string>;
  /** A typed client acting as a fresh key of `userId`. */
  client(userId: number, options?: { scopes?: Scope[]; actAsUserId?: number }): Promise<MemoryExchangeClient>;
  close(): Promise<void>;
}

/** The real server on a real database, listening on a free loopback port. */
export async function startTestServer(dialect: Dialect, env: Record<string, string> = {}): Promise<TestServer> {
  const database = await createTestDatabase(dialect);
  const config = loadConfig({
    DATABASE_URL: database.url,
    MEMORY_EXCHANGE_PORT: "0",
    MEMORY_EXCHANGE_HOST: "127.0.0.1",
    MEMORY_EXCHANGE_LOG_LEVEL: "silent",
    ...env,
  });
  const server = await buildServer(config);
  const url = await server.listen();
  const createKey = async (userId: number, scopes: Scope[] = ["read", "trade"]) =>
    (await createApiKey(server.services.store, { userId, name: "test", scopes })).key;
  return {
    dialect,
    url,
    server,
    database,
    config,
    createKey,
    async client(userId, options = {}) {
      const apiKey = await createKey(userId, options.scopes);
      return createMemoryExchangeClient({ url, apiKey, actAsUserId: options.actAsUserId });
    },
    async close() {
      await server.close();
      await database.drop();
    },
  };
}
