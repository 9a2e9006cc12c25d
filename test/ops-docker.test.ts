import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { parseDatabaseUrl } from "@memory-exchange/server";
import { REPO_ROOT } from "./support/server-process.js";

/**
 * No container engine runs here, so the Dockerfile cannot rot silently in
 * another way: this test copies the build context (the working tree minus
 * .dockerignore), runs the build stage's RUN commands as written (pnpm from
 * the local store, offline), then runs the deployed output the way the
 * runtime stage does: ENTRYPOINT + CMD from WORKDIR, and the HEALTHCHECK.
 */

const dockerfile = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");

interface Instruction {
  keyword: string;
  args: string;
  /** the comment lines right above it */
  comments: string[];
  stage: string;
}

/** Dockerfile instructions with line continuations joined and stage names attached. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let comments: string[] = [];
  let stage = "";
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (/^\s*#/.test(line)) {
      comments.push(line.replace(/^\s*#\s?/, ""));
      continue;
    }
    if (line.trim() === "") {
      comments = [];
      continue;
    }
    // Docker drops a backslash-newline outright; the next line continues the instruction.
    while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!;
    const [, keyword, args] = /^\s*(\w+)\s+([\s\S]*)$/.exec(line)!;
    const upper = keyword!.toUpperCase();
    if (upper === "FROM") stage = / AS (\w+)/i.exec(args!)?.[1] ?? "";
    out.push({ keyword: upper, args: args!.trim(), comments, stage });
    comments = [];
  }
  return out;
}

const all = instructions(dockerfile);
const stage = (name: string) => all.filter((i) => i.stage === name);
const one = (name: string, keyword: string) => {
  const found = stage(name).filter((i) => i.keyword === keyword);
  expect(found, `${keyword} in stage ${name}`).toHaveLength(1);
  return found[0]!;
};

/** A tiny .dockerignore matcher for the patterns this repository uses (`**`, `*`, plain paths). */
function ignoredBy(patterns: string[]) {
  const regexes = patterns.map((p) => {
    const source = p
      .replace(/[.+^${}()|[\]]/g, "\\$&")
      .replace(/\*\*\//g, "(?:.*/)?")
      .replace(/\*/g, "[^/]*");
    return new RegExp(`^${source}(?:/.*)?$`);
  });
  return (path: string) => regexes.some((r) => r.test(path));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const runJson = (args: string) => JSON.parse(args) as string[];

describe("Dockerfile", () => {
  it("is multi-stage on the current LTS with a Node version argument, non-root, EXPOSE 8080, HEALTHCHECK on /ready", () => {
    expect(dockerfile).toMatch(/^ARG NODE_VERSION=(\d+)$/m);
    expect(Number(/^ARG NODE_VERSION=(\d+)$/m.exec(dockerfile)![1])).toBeGreaterThanOrEqual(22);
    const froms = all.filter((i) => i.keyword === "FROM").map((i) => i.args);
    expect(froms).toEqual(["node:${NODE_VERSION}-slim AS build", "node:${NODE_VERSION}-slim AS runtime"]);
    expect(one("runtime", "USER").args).toBe("node");
    expect(one("runtime", "EXPOSE").args).toBe("8080");
    expect(one("runtime", "WORKDIR").args).toBe("/app");
    expect(one("runtime", "COPY").args).toBe("--from=build /out /app");
    expect(one("runtime", "HEALTHCHECK").args).toMatch(/\/ready/);
    // pnpm comes from package.json's packageManager, not a second pinned version.
    expect(dockerfile).toMatch(/packageManager/);
  });
});

describe("docker-compose.yml", () => {
  const compose = parseYaml(readFileSync(join(REPO_ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
    services: Record<string, { image?: string; command?: string[]; environment?: Record<string, string>; depends_on?: Record<string, { condition: string }>; healthcheck?: unknown; ports?: string[] }>;
  };
  const expand = (value: string) => value.replace(/\$\{(\w+):-([^}]*)\}/g, (_m, _name, fallback: string) => fallback);

  it("starts MySQL 8 with a healthcheck, migrates once, then serves; every service agrees on the database", () => {
    const { mysql, migrate, "memory-exchange": api } = compose.services;
    expect(mysql?.image).toMatch(/^mysql:8\./);
    expect(mysql?.healthcheck).toBeDefined();
    expect(migrate?.command).toEqual(["migrate"]);
    expect(migrate?.depends_on?.mysql?.condition).toBe("service_healthy");
    expect(api?.command).toEqual(["serve"]);
    expect(api?.depends_on?.migrate?.condition).toBe("service_completed_successfully");
    expect(api?.ports).toContain("8080:8080");
    for (const service of [migrate!, api!]) {
      const database = parseDatabaseUrl(expand(service.environment!.DATABASE_URL!));
      expect(database).toMatchObject({ dialect: "mysql", host: "mysql", port: 3306, database: mysql!.environment!.MYSQL_DATABASE, user: mysql!.environment!.MYSQL_USER });
      expect(database.dialect === "mysql" && database.password).toBe(expand(mysql!.environment!.MYSQL_PASSWORD!));
    }
  });
});

describe("the Dockerfile's build steps, run in a copy of the build context", () => {
  let work: string;
  let context: string;
  let out: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "mx-docker-"));
    context = join(work, "context");
    out = join(work, "out");
    // The build context: what git knows (tracked and new files, minus .gitignore), minus .dockerignore.
    const ignored = ignoredBy(
      readFileSync(join(REPO_ROOT, ".dockerignore"), "utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#")),
    );
    const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: REPO_ROOT, encoding: "utf8" })
      .split("\0")
      .filter((f) => f && !ignored(f) && existsSync(join(REPO_ROOT, f)));
    for (const file of files) {
      mkdirSync(dirname(join(context, file)), { recursive: true });
      cpSync(join(REPO_ROOT, file), join(context, file));
    }
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("runs every build-stage RUN step (pnpm offline from the local store) and deploys a self-contained server", () => {
    // Files the stage copies before the full context must be in the context.
    const early = stage("build").find((i) => i.keyword === "COPY")!;
    for (const file of early.args.split(/\s+/).slice(0, -1)) expect(existsSync(join(context, file)), file).toBe(true);

    const steps = stage("build").filter((i) => i.keyword === "RUN" && !i.comments.some((c) => c.includes("[toolchain]")));
    expect(steps.map((s) => s.args.split(/\s+/).slice(0, 2).join(" "))).toEqual([
      "pnpm fetch",
      "pnpm install",
      "pnpm --filter",
      "pnpm --config.inject-workspace-packages=true",
      "rm -rf",
    ]);
    for (const step of steps) {
      let command = step.args.replace(/(?<=\s)\/out(?=[\s/]|$)/g, out);
      // The image fetches from the registry; here the same packages come from the local store.
      if (/^pnpm fetch\b/.test(command)) command += " --offline";
      execFileSync("sh", ["-c", command], { cwd: context, stdio: "pipe", env: { ...process.env, CI: "true" } });
    }

    expect(existsSync(join(out, "dist/cli.js"))).toBe(true);
    const installed = readdirSync(join(out, "node_modules/.pnpm"));
    for (const dev of ["vitest@", "tsup@", "turbo@", "tsx@"]) expect(installed.some((p) => p.startsWith(dev)), dev).toBe(false);
    expect(installed.some((p) => p.startsWith("better-sqlite3@12."))).toBe(true);
  }, 600_000);

  it("the deployed server runs as the image runs it: --version, migrate, serve, HEALTHCHECK, SIGTERM", async () => {
    expect(existsSync(join(out, "dist/cli.js")), "the build step ran").toBe(true);
    const entrypoint = runJson(one("runtime", "ENTRYPOINT").args);
    const cmd = runJson(one("runtime", "CMD").args);
    expect([...entrypoint, ...cmd]).toEqual(["node", "dist/cli.js", "serve"]);
    const port = String(await freePort());
    // The runtime stage's environment (ENV lines), with a free port on loopback for the test.
    const imageEnv: Record<string, string> = {};
    for (const env of stage("runtime").filter((i) => i.keyword === "ENV"))
      for (const [, name, value] of env.args.matchAll(/(\w+)=(\S+)/g)) imageEnv[name!] = value!;
    expect(imageEnv).toMatchObject({ NODE_ENV: "production", MEMORY_EXCHANGE_PORT: "8080" });
    const env = { PATH: process.env.PATH!, HOME: process.env.HOME!, ...imageEnv, MEMORY_EXCHANGE_PORT: port, MEMORY_EXCHANGE_HOST: "127.0.0.1" };
    const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: out, env, encoding: "utf8" });

    const version = (JSON.parse(readFileSync(join(REPO_ROOT, "packages/server/package.json"), "utf8")) as { version: string }).version;
    expect(node([entrypoint[1]!, "--version"]).trim()).toBe(version);
    expect(node([entrypoint[1]!, "migrate"])).toMatch(/^migrations applied: /);
    expect(existsSync(join(out, "data/memory-exchange.db")), "SQLite default lives in the data volume").toBe(true);

    const server = spawn(process.execPath, [...entrypoint.slice(1), ...cmd], { cwd: out, env, stdio: ["ignore", "pipe", "pipe"] });
    const exit = new Promise<number | null>((resolve) => server.on("exit", (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout.on("data", (d: Buffer) => d.toString().includes("memory-exchange listening") && resolve());
        void exit.then((code) => reject(new Error(`server exited ${code}`)));
      });
      const healthcheck = runJson(/CMD (\[.*\])$/s.exec(one("runtime", "HEALTHCHECK").args)![1]!);
      expect(healthcheck[0]).toBe("node");
      execFileSync(process.execPath, healthcheck.slice(1), { cwd: out, env }); // throws unless exit 0
    } finally {
      server.kill("SIGTERM");
    }
    expect(await exit).toBe(0);
    // With the server gone the healthcheck fails.
    expect(() => execFileSync(process.execPath, runJson(/CMD (\[.*\])$/s.exec(one("runtime", "HEALTHCHECK").args)![1]!).slice(1), { env })).toThrow();
  }, 120_000);
});
