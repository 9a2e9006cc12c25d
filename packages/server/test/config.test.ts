import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ConfigError, loadConfig, parseDatabaseUrl, readDotEnv } from "../src/config.js";

describe("DATABASE_URL forms", () => {
  test("unset → embedded SQLite under ./data", () => {
    expect(parseDatabaseUrl(undefined)).toEqual({ dialect: "sqlite", file: "./data/memory-exchange.db" });
    expect(parseDatabaseUrl("  ")).toEqual({ dialect: "sqlite", file: "./data/memory-exchange.db" });
  });

  test("file:path → SQLite at that path", () => {
    expect(parseDatabaseUrl("file:/var/lib/mx.db")).toEqual({ dialect: "sqlite", file: "/var/lib/mx.db" });
    expect(parseDatabaseUrl("file:./local.db")).toEqual({ dialect: "sqlite", file: "./local.db" });
  });

  test("mysql:// URL with encoded credentials and TLS flag", () => {
    expect(parseDatabaseUrl("mysql://app:p%40ss@db.internal:4000/market?ssl=true", 7)).toEqual({
      dialect: "mysql",
      host: "db.internal",
      port: 4000,
      user: "app",
      password: "p@ss",
      database: "market",
      ssl: true,
      poolSize: 7,
    });
    expect(parseDatabaseUrl("mysql://root@127.0.0.1/test")).toMatchObject({ port: 3306, password: "", ssl: false });
  });

  test("the Go driver DSN from the seed", () => {
    expect(parseDatabaseUrl("user:password@tcp(localhost:3307)/database")).toMatchObject({
      dialect: "mysql",
      host: "localhost",
      port: 3307,
      user: "user",
      password: "password",
      database: "database",
      ssl: false,
    });
    expect(parseDatabaseUrl("u:p@tcp(gw.tidbcloud.com:4000)/db?tls=true&parseTime=true")).toMatchObject({ ssl: true, port: 4000 });
  });

  test("a server on this host through its Unix socket, in either form", () => {
    expect(parseDatabaseUrl("mysql://app:pw@localhost/market?socket=%2Frun%2Fmysqld%2Fmysqld.sock")).toMatchObject({
      dialect: "mysql",
      socketPath: "/run/mysqld/mysqld.sock",
      user: "app",
      password: "pw",
      database: "market",
    });
    expect(parseDatabaseUrl("mysql://root@localhost/test?socket=/tmp/mysql.sock")).toMatchObject({ socketPath: "/tmp/mysql.sock" });
    expect(parseDatabaseUrl("user:password@unix(/var/run/mysqld/mysqld.sock)/database?parseTime=true")).toMatchObject({
      dialect: "mysql",
      socketPath: "/var/run/mysqld/mysqld.sock",
      user: "user",
      password: "password",
      database: "database",
    });
    expect(parseDatabaseUrl("mysql://root@127.0.0.1/test")).not.toHaveProperty("socketPath");
    expect(() => parseDatabaseUrl("mysql://root@localhost/test?socket=")).toThrow(/socket= needs the path/);
  });

  test("anything else is a configuration error naming the accepted forms", () => {
    expect(() => parseDatabaseUrl("postgres://x@y/z")).toThrow(ConfigError);
    expect(() => parseDatabaseUrl("mysql://root@localhost")).toThrow(/must name a database/);
  });
});

describe("loadConfig", () => {
  test("defaults", () => {
    const config = loadConfig({});
    expect(config.port).toBe(8080);
    expect(config.bodyLimitBytes).toBe(64 * 1024 * 1024);
    expect(config.database).toEqual({ dialect: "sqlite", file: "./data/memory-exchange.db" });
    expect(config.migrateOnStart).toBe(true);
  });

  test("invalid values are reported by variable name", () => {
    expect(() => loadConfig({ MEMORY_EXCHANGE_PORT: "eighty" })).toThrow(/MEMORY_EXCHANGE_PORT/);
  });

  test(".env is read and the real environment wins", () => {
    const dir = mkdtempSync(join(tmpdir(), "mx-env-"));
    writeFileSync(join(dir, ".env"), '# comment\nMEMORY_EXCHANGE_PORT=9090\nexport DATABASE_URL="file:./from-dotenv.db"\n');
    const fromFile = readDotEnv(dir);
    expect(fromFile).toEqual({ MEMORY_EXCHANGE_PORT: "9090", DATABASE_URL: "file:./from-dotenv.db" });
    const config = loadConfig({ ...fromFile, MEMORY_EXCHANGE_PORT: "7000" });
    expect(config.port).toBe(7000);
    expect(config.database).toEqual({ dialect: "sqlite", file: "./from-dotenv.db" });
  });
});
