#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from "node:util";
import { createApiKeyInput, SCOPES } from "@memory-exchange/shared";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { migrate } from "./db/migrate.js";
import { openDatabase } from "./db/open-database.js";
import { createApiKey, listApiKeys, revokeApiKey, ApiKeyVerifier } from "./domain/api-keys.js";
import { DomainError } from "./errors.js";
import { buildServer } from "./http/build-server.js";
import { createStore } from "./store/create-store.js";
import { VERSION } from "./version.js";

const USAGE = `memory-exchange ${VERSION}

Usage:
  memory-exchange serve                      start the HTTP server (migrates first unless MEMORY_EXCHANGE_MIGRATE_ON_START=false)
  memory-exchange migrate                    apply database migrations and exit
  memory-exchange keys create --user-id N [--name NAME] [--scopes read,trade,admin] [--expires-in-days D] [--json]
  memory-exchange keys list [--user-id N] [--json]
  memory-exchange keys revoke <id> [--json]
  memory-exchange --help | --version

Configuration comes from the environment (and ./.env): DATABASE_URL, MEMORY_EXCHANGE_PORT, ...
`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === "--version" || command === "-v") {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const config = loadConfig();
  switch (command) {
    case "serve":
      expectNoArgs(rest);
      return serve(config);
    case "migrate": {
      expectNoArgs(rest);
      const database = await openDatabase(config.database);
      try {
        const result = await migrate(database);
        process.stdout.write(
          `migrations applied: ${result.applied.join(", ") || "none"}; already applied: ${result.alreadyApplied.length}\n`,
        );
      } finally {
        await database.close();
      }
      return 0;
    }
    case "keys":
      return keys(config, rest);
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

function expectNoArgs(args: string[]) {
  if (args.length) throw new UsageError(`unexpected argument '${args[0]}'`);
}

function parse(args: string[], options: NonNullable<ParseArgsConfig["options"]>, positionals = 0) {
  try {
    const parsed = parseArgs({ args, options, allowPositionals: positionals > 0, strict: true });
    if (parsed.positionals.length > positionals) throw new UsageError(`unexpected argument '${parsed.positionals[positionals]}'`);
    return parsed;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function positiveInt(name: string, value: unknown): number {
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 2_147_483_647)) throw new UsageError(`${name} must be a positive integer`);
  return n;
}

async function keys(config: Config, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const database = await openDatabase(config.database);
  try {
    await migrate(database);
    const store = createStore(database);
    switch (sub) {
      case "create": {
        const { values } = parse(rest, {
          "user-id": { type: "string" },
          name: { type: "string" },
          scopes: { type: "string" },
          "expires-in-days": { type: "string" },
          json: { type: "boolean" },
        });
        if (values["user-id"] === undefined) throw new UsageError("--user-id is required");
        const days = values["expires-in-days"] === undefined ? undefined : positiveInt("--expires-in-days", values["expires-in-days"]);
        const input = createApiKeyInput.safeParse({
          userId: positiveInt("--user-id", values["user-id"]),
          name: values.name,
          scopes: typeof values.scopes === "string" ? values.scopes.split(",").map((s: string) => s.trim()).filter(Boolean) : undefined,
          expiresAt: days ? new Date(Date.now() + days * 86_400_000) : undefined,
        });
        if (!input.success)
          throw new UsageError(input.error.issues.map((i) => `--${String(i.path[0] ?? "")}: ${i.message}`).join("; ") + ` (scopes: ${SCOPES.join(", ")})`);
        const key = await createApiKey(store, input.data);
        if (values.json) {
          process.stdout.write(`${JSON.stringify({ key: key.key, id: key.id, user_id: key.userId, scopes: key.scopes })}\n`);
        } else {
          process.stdout.write(
            `API key ${key.id} for user ${key.userId} (scopes: ${key.scopes.join(",")}):\n\n  ${key.key}\n\nStore it now: it is not shown again.\n`,
          );
        }
        return 0;
      }
      case "list": {
        const { values } = parse(rest, { "user-id": { type: "string" }, json: { type: "boolean" } });
        const userId = values["user-id"] === undefined ? undefined : positiveInt("--user-id", values["user-id"]);
        const list = await listApiKeys(store, userId);
        if (values.json) {
          process.stdout.write(`${JSON.stringify(list)}\n`);
        } else {
          for (const k of list) {
            const state = k.revokedAt ? "revoked" : k.expiresAt && k.expiresAt <= new Date() ? "expired" : "active";
            process.stdout.write(`${k.id}\tuser ${k.userId}\t${k.prefix}…\t${k.scopes.join(",")}\t${state}\t${k.name}\n`);
          }
          if (list.length === 0) process.stdout.write("no API keys\n");
        }
        return 0;
      }
      case "revoke": {
        const { values, positionals } = parse(rest, { json: { type: "boolean" } }, 1);
        if (!positionals[0]) throw new UsageError("keys revoke needs the key id");
        const id = positiveInt("id", positionals[0]);
        const verifier = new ApiKeyVerifier(store, { ttlMs: 0, touchIntervalMs: 0 });
        const result = await revokeApiKey(store, verifier, id);
        process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `API key ${id} ${result.revoked ? "revoked" : "was already revoked"}\n`);
        return 0;
      }
      default:
        throw new UsageError(sub ? `unknown keys command '${sub}'` : "keys needs a command: create, list or revoke");
    }
  } finally {
    await database.close();
  }
}

async function serve(config: Config): Promise<number> {
  const server = await buildServer(config);
  const address = await server.listen();
  server.app.log.info({ address, dialect: server.database.dialect, version: VERSION }, "memory-exchange listening");
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      server.app.log.info({ signal }, "shutting down: draining in-flight requests");
      const force = setTimeout(() => {
        server.app.log.error("shutdown grace period elapsed; exiting");
        resolve(1);
      }, config.shutdownGraceMs);
      force.unref();
      server.close().then(
        () => {
          server.app.log.info("shutdown complete: requests drained, database closed");
          resolve(0);
        },
        (error) => {
          server.app.log.error({ err: error }, "shutdown failed");
          resolve(1);
        },
      );
    };
    // once: a second signal gets Node's default handling and ends the process at once.
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    if (error instanceof UsageError) {
      process.stderr.write(`memory-exchange: ${error.message}\n\n${USAGE}`);
      process.exit(2);
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`memory-exchange: ${error.message}\n`);
      process.exit(2);
    }
    if (error instanceof DomainError) {
      process.stderr.write(`memory-exchange: ${error.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`memory-exchange: ${(error as Error)?.message ?? String(error)}\n`);
    process.exit(1);
  },
);
