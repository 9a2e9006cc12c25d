import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, testDialects, type TestDatabase } from "../packages/server/test/support/databases.js";
import { CLI, ensureServerBuilt, mintKey, runCli, scratchDir, SERVER_DIR, startServerProcess } from "./support/server-process.js";

const VERSION = (JSON.parse(readFileSync(join(SERVER_DIR, "package.json"), "utf8")) as { version: string }).version;

beforeAll(ensureServerBuilt, 600_000);

describe("the built binary runs with plain node", () => {
  it("is declared as the package bin and bundles the workspace code", () => {
    const pkg = JSON.parse(readFileSync(join(SERVER_DIR, "package.json"), "utf8")) as { bin: Record<string, string> };
    expect(join(SERVER_DIR, pkg.bin["memory-exchange"]!)).toBe(CLI);
    expect(readFileSync(CLI, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
    // Workspace packages resolve to TypeScript sources in the repo; the binary must not import them.
    for (const file of readdirSync(join(SERVER_DIR, "dist")).filter((f) => f.endsWith(".js")))
      expect(readFileSync(join(SERVER_DIR, "dist", file), "utf8"), file).not.toMatch(/from ["']@memory-exchange\//);
  });

  it("--version prints the package version; --help prints usage; both exit 0", async () => {
    const version = await runCli(["--version"]);
    expect(version).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    const help = await runCli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage:[\s\S]*serve[\s\S]*migrate[\s\S]*keys create/);
  });

  it.each([
    [[], /Usage:/],
    [["bogus"], /unknown command 'bogus'/],
    [["--bogus"], /unknown command '--bogus'/],
    [["serve", "--port", "1"], /unexpected argument '--port'/],
    [["migrate", "now"], /unexpected argument 'now'/],
    [["keys"], /keys needs a command/],
    [["keys", "create"], /--user-id is required/],
    [["keys", "create", "--user-id", "abc"], /--user-id must be a positive integer/],
    [["keys", "create", "--user-id", "1", "--scopes", "root"], /scopes/],
    [["keys", "list", "--colour"], /Unknown option '--colour'/],
    [["keys", "revoke"], /needs the key id/],
  ])("usage error %j → exit 2 with a message and the usage", async (args, message) => {
    const result = await runCli(args, { DATABASE_URL: `file:${join(scratchDir(), "db.sqlite")}` });
    expect(result.code).toBe(2);
    expect(result.stdout + result.stderr).toMatch(message);
    expect(result.stdout + result.stderr).toMatch(/Usage:/);
  });

  it("invalid configuration → exit 2 naming the variable, no stack", async () => {
    const result = await runCli(["migrate"], { MEMORY_EXCHANGE_PORT: "eighty" });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/MEMORY_EXCHANGE_PORT/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("an unreachable database → exit 1 with a one-line message, no stack", async () => {
    const result = await runCli(["migrate"], { DATABASE_URL: "mysql://nobody@127.0.0.1:1/none" });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^memory-exchange: /);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

for (const dialect of await testDialects()) {
  describe(`binary on ${dialect}`, () => {
    let database: TestDatabase;
    let env: Record<string, string>;
    beforeAll(async () => {
      database = await createTestDatabase(dialect);
      env = { DATABASE_URL: database.url };
    });
    afterAll(() => database.drop());

    it("migrate applies every migration once, then none", async () => {
      const first = await runCli(["migrate"], env);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toMatch(/^migrations applied: \S+/);
      const second = await runCli(["migrate"], env);
      expect(second).toMatchObject({ code: 0 });
      expect(second.stdout).toMatch(/^migrations applied: none; already applied: [1-9]/);
    });

    it("keys create | list | revoke", async () => {
      const created = await mintKey(env, 42, "read,trade");
      expect(created.key).toMatch(/^mx_/);
      const list = await runCli(["keys", "list", "--user-id", "42", "--json"], env);
      expect(list.code).toBe(0);
      const keys = JSON.parse(list.stdout) as { id: number; userId: number; revokedAt: string | null }[];
      expect(keys.map((k) => k.id)).toContain(created.id);
      expect(list.stdout).not.toContain(created.key);

      const revoked = await runCli(["keys", "revoke", String(created.id)], env);
      expect(revoked).toMatchObject({ code: 0, stdout: `API key ${created.id} revoked\n` });
      const again = await runCli(["keys", "revoke", String(created.id), "--json"], env);
      expect(JSON.parse(again.stdout)).toEqual({ id: created.id, revoked: false });
      const missing = await runCli(["keys", "revoke", "999999"], env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/API key 999999 not found/);
    });

    it("serve answers /health with the version and /ready with 200, and stops on SIGTERM with exit 0", async () => {
      const server = await startServerProcess(env);
      try {
        const health = await fetch(`${server.url}/health`);
        expect(await health.json()).toMatchObject({ status: "ok", service: "memory-exchange", version: VERSION });
        expect((await fetch(`${server.url}/ready`)).status).toBe(200);
      } finally {
        expect(await server.stop()).toEqual({ code: 0, signal: null });
      }
    });
  });
}
