import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";

/**
 * The one place that reads the environment. A `.env` file in the working
 * directory is read when present; variables already set in the real
 * environment win, as the Go service did.
 */
const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");
const int = (min: number) => z.coerce.number().int().min(min);
const mebibytes = z.coerce.number().positive().transform((mib) => Math.floor(mib * 1024 * 1024));

const envSchema = z.object({
  DATABASE_URL: z.string().trim().optional(),
  MEMORY_EXCHANGE_PORT: int(0).max(65535).default(8080),
  MEMORY_EXCHANGE_HOST: z.string().default("0.0.0.0"),
  MEMORY_EXCHANGE_MIGRATE_ON_START: bool.default(true),
  MEMORY_EXCHANGE_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  MEMORY_EXCHANGE_LOG_PRETTY: bool.optional(),
  MEMORY_EXCHANGE_DB_POOL_SIZE: int(1).default(10),
  MEMORY_EXCHANGE_DB_QUERY_TIMEOUT_MS: int(0).default(10_000),
  MEMORY_EXCHANGE_KEY_CACHE_TTL_MS: int(0).default(30_000),
  MEMORY_EXCHANGE_READ_CACHE_TTL_MS: int(0).default(1_000),
  MEMORY_EXCHANGE_BODY_LIMIT_MB: mebibytes.prefault(64),
  MEMORY_EXCHANGE_MAX_UPLOAD_MB: mebibytes.prefault(2048),
  MEMORY_EXCHANGE_MAX_CONCURRENT_UPLOADS: int(0).default(8),
  MEMORY_EXCHANGE_INLINE_PAYLOAD_MB: mebibytes.prefault(8),
  MEMORY_EXCHANGE_CORS_ORIGINS: z.string().default(""),
  MEMORY_EXCHANGE_RATE_LIMIT_MAX: int(0).default(0),
  MEMORY_EXCHANGE_RATE_LIMIT_WINDOW_MS: int(1).default(60_000),
  MEMORY_EXCHANGE_MAX_EVENT_LOOP_DELAY_MS: int(0).default(1_000),
  MEMORY_EXCHANGE_MAX_EVENT_LOOP_UTILIZATION: z.coerce.number().min(0).max(1).default(0),
  MEMORY_EXCHANGE_REQUEST_TIMEOUT_MS: int(0).default(120_000),
  MEMORY_EXCHANGE_SHUTDOWN_GRACE_MS: int(0).default(30_000),
  MEMORY_EXCHANGE_METRICS_PORT: int(0).max(65535).optional(),
  MEMORY_EXCHANGE_ALIGNMENT_MAX_GFLOP: z.coerce.number().positive().default(50),
  MEMORY_EXCHANGE_ALIGNMENT_WORKERS: int(1).max(256).optional(),
  MEMORY_EXCHANGE_ALIGNMENT_MAX_PAYLOAD_MB: mebibytes.prefault(256),
  NODE_ENV: z.string().default("production"),
});

export type DatabaseConfig =
  | { dialect: "sqlite"; file: string }
  | {
      dialect: "mysql";
      host: string;
      port: number;
      /** a Unix socket on this host, used instead of host and port */
      socketPath?: string;
      user: string;
      password: string;
      database: string;
      ssl: boolean;
      poolSize: number;
      queryTimeoutMs?: number;
    };

export interface Config {
  database: DatabaseConfig;
  port: number;
  host: string;
  migrateOnStart: boolean;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  logPretty: boolean;
  keyCacheTtlMs: number;
  /** browse pages and stats are served from memory this long (writes in this process invalidate at once); 0 = off */
  readCacheTtlMs: number;
  bodyLimitBytes: number;
  /** largest safetensors file `PUT /api/v1/payloads` accepts */
  maxUploadBytes: number;
  /** uploads one instance receives at a time (each holds up to ~2 MiB of chunks and a header of up to 16 MiB); more answer 503; 0 = no cap */
  maxConcurrentUploads: number;
  /** purchase/use/get inline a payload up to this size; above it they answer a payloadUrl to download */
  inlinePayloadBytes: number;
  corsOrigins: string[];
  rateLimit: { max: number; windowMs: number };
  /** load shedding (503 OVERLOADED) when the event loop lags or is saturated; 0 disables a check */
  underPressure: { maxEventLoopDelayMs: number; maxEventLoopUtilization: number };
  requestTimeoutMs: number;
  shutdownGraceMs: number;
  metricsPort: number | undefined;
  /**
   * xW on purchase/use: alignments above maxFlops, or of payloads above maxPayloadBytes (held in memory while
   * aligned), answer ALIGNMENT_TOO_LARGE; worker threads (default: cores - 1, at least 1)
   */
  alignment: { maxFlops: number; maxPayloadBytes: number; workers: number | undefined };
}

export const DEFAULT_SQLITE_FILE = "./data/memory-exchange.db";

export class ConfigError extends Error {}

/** Parses the `DATABASE_URL` forms the service accepts (see README). */
export function parseDatabaseUrl(url: string | undefined, poolSize = 10): DatabaseConfig {
  const value = url?.trim();
  if (!value) return { dialect: "sqlite", file: DEFAULT_SQLITE_FILE };
  if (value.startsWith("file:")) {
    const file = value.slice("file:".length).replace(/^\/\/(?=\/)/, "");
    if (!file) throw new ConfigError("DATABASE_URL file: needs a path");
    return { dialect: "sqlite", file };
  }
  if (/^(mysql|mariadb|tidb):\/\//.test(value)) {
    const parsed = new URL(value);
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
    if (!database) throw new ConfigError("DATABASE_URL must name a database: mysql://user:pass@host:port/db");
    const sslParam = parsed.searchParams.get("ssl") ?? parsed.searchParams.get("tls");
    const socketPath = parsed.searchParams.get("socket");
    if (socketPath === "") throw new ConfigError("DATABASE_URL socket= needs the path of the server's Unix socket");
    return {
      dialect: "mysql",
      host: parsed.hostname,
      port: parsed.port ? Number(parsed.port) : 3306,
      ...(socketPath ? { socketPath } : {}),
      user: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
      database,
      ssl: sslParam === "true" || sslParam === "1",
      poolSize,
    };
  }
  // The Go driver's DSN: user:password@tcp(host:port)/database?params, or @unix(/path/to/socket)
  const go =
    /^(?<user>[^:@]*)(?::(?<password>[^@]*))?@(?:tcp\((?<host>[^:)]+)(?::(?<port>\d+))?\)|unix\((?<socket>[^)]+)\))\/(?<database>[^?]+)(?:\?(?<params>.*))?$/.exec(
      value,
    );
  if (go?.groups) {
    const params = new URLSearchParams(go.groups.params ?? "");
    const tls = params.get("tls");
    return {
      dialect: "mysql",
      host: go.groups.host ?? "localhost",
      port: go.groups.port ? Number(go.groups.port) : 3306,
      ...(go.groups.socket ? { socketPath: go.groups.socket } : {}),
      user: go.groups.user ?? "",
      password: go.groups.password ?? "",
      database: go.groups.database!,
      ssl: tls === "true" || tls === "skip-verify" || tls === "preferred",
      poolSize,
    };
  }
  throw new ConfigError(
    "DATABASE_URL must be mysql://user:pass@host:port/db[?socket=/path], user:pass@tcp(host:port)/db, user:pass@unix(/path)/db, or file:path",
  );
}

/** MySQL only: an unanswered query fails after this long (0: never), so a dead network cannot hang requests. */
function withQueryTimeout(database: DatabaseConfig, queryTimeoutMs: number): DatabaseConfig {
  return database.dialect === "mysql" ? { ...database, queryTimeoutMs } : database;
}

/** Reads `.env` (if present) into a plain object; the real environment is not modified. */
export function readDotEnv(dir = process.cwd()): Record<string, string> {
  const file = resolve(dir, ".env");
  if (!existsSync(file)) return {};
  const values: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match || line.trimStart().startsWith("#")) continue;
    let raw = match[2]!;
    if (/^(["']).*\1$/.test(raw)) raw = raw.slice(1, -1);
    values[match[1]!] = raw;
  }
  return values;
}

/** Builds the validated configuration from an environment (default: `.env` overlaid by `process.env`). */
export function loadConfig(env: Record<string, string | undefined> = { ...readDotEnv(), ...process.env }): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  return {
    database: withQueryTimeout(parseDatabaseUrl(e.DATABASE_URL, e.MEMORY_EXCHANGE_DB_POOL_SIZE), e.MEMORY_EXCHANGE_DB_QUERY_TIMEOUT_MS),
    port: e.MEMORY_EXCHANGE_PORT,
    host: e.MEMORY_EXCHANGE_HOST,
    migrateOnStart: e.MEMORY_EXCHANGE_MIGRATE_ON_START,
    logLevel: e.MEMORY_EXCHANGE_LOG_LEVEL,
    logPretty: e.MEMORY_EXCHANGE_LOG_PRETTY ?? e.NODE_ENV === "development",
    keyCacheTtlMs: e.MEMORY_EXCHANGE_KEY_CACHE_TTL_MS,
    readCacheTtlMs: e.MEMORY_EXCHANGE_READ_CACHE_TTL_MS,
    bodyLimitBytes: e.MEMORY_EXCHANGE_BODY_LIMIT_MB,
    maxUploadBytes: e.MEMORY_EXCHANGE_MAX_UPLOAD_MB,
    maxConcurrentUploads: e.MEMORY_EXCHANGE_MAX_CONCURRENT_UPLOADS,
    inlinePayloadBytes: e.MEMORY_EXCHANGE_INLINE_PAYLOAD_MB,
    corsOrigins: e.MEMORY_EXCHANGE_CORS_ORIGINS.split(",").map((s) => s.trim()).filter(Boolean),
    rateLimit: { max: e.MEMORY_EXCHANGE_RATE_LIMIT_MAX, windowMs: e.MEMORY_EXCHANGE_RATE_LIMIT_WINDOW_MS },
    underPressure: {
      maxEventLoopDelayMs: e.MEMORY_EXCHANGE_MAX_EVENT_LOOP_DELAY_MS,
      maxEventLoopUtilization: e.MEMORY_EXCHANGE_MAX_EVENT_LOOP_UTILIZATION,
    },
    requestTimeoutMs: e.MEMORY_EXCHANGE_REQUEST_TIMEOUT_MS,
    shutdownGraceMs: e.MEMORY_EXCHANGE_SHUTDOWN_GRACE_MS,
    metricsPort: e.MEMORY_EXCHANGE_METRICS_PORT,
    alignment: {
      maxFlops: e.MEMORY_EXCHANGE_ALIGNMENT_MAX_GFLOP * 1e9,
      maxPayloadBytes: e.MEMORY_EXCHANGE_ALIGNMENT_MAX_PAYLOAD_MB,
      workers: e.MEMORY_EXCHANGE_ALIGNMENT_WORKERS,
    },
  };
}
