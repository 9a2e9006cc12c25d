import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The built binary as operators run it: `node packages/server/dist/cli.js`,
 * plain node (no tsx, no source condition), in a child process with its own
 * environment and working directory.
 */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const SERVER_DIR = join(REPO_ROOT, "packages/server");
export const CLI = join(SERVER_DIR, "dist/cli.js");

/**
 * `pnpm test` builds first; a direct `vitest run` on a fresh clone builds
 * here, once: test files run in parallel, so a lock directory keeps a second
 * build from wiping dist/ under a running binary.
 */
export async function ensureServerBuilt(): Promise<void> {
  const lock = join(SERVER_DIR, ".build-lock");
  for (;;) {
    if (existsSync(CLI) && !existsSync(lock)) return;
    try {
      mkdirSync(lock);
    } catch {
      // A lock left by a killed run goes stale after ten minutes.
      const since = statSync(lock, { throwIfNoEntry: false })?.mtimeMs;
      if (since !== undefined && Date.now() - since > 600_000) rmSync(lock, { recursive: true, force: true });
      await sleep(250);
      continue;
    }
    try {
      if (!existsSync(CLI)) execFileSync("pnpm", ["--filter", "@memory-exchange/server...", "build"], { cwd: REPO_ROOT, stdio: "ignore" });
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}

/** A working directory without a `.env`, so only the given environment counts. */
export const scratchDir = () => mkdtempSync(join(tmpdir(), "mx-ops-"));

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}, cwd = scratchDir()): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, stdout, stderr }));
  });
}

export interface LogLine {
  level?: number;
  msg?: string;
  reqId?: string;
  [key: string]: unknown;
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Every stdout line so far (pino JSON in production mode). */
  output: string[];
  /** The stdout lines that parse as JSON. */
  logs(): LogLine[];
  stderr(): string;
  /** Resolves with the first line that matches (already printed or still to come). */
  waitForLine(match: (line: string) => boolean): Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (unless already gone) and wait for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `serve` on a free port; the bound address comes from the "listening" log line, so the level stays ≤ info. */
export async function startServerProcess(env: Record<string, string>, cwd = scratchDir()): Promise<ServerProcess> {
  if (env.MEMORY_EXCHANGE_LOG_LEVEL && !["info", "debug", "trace"].includes(env.MEMORY_EXCHANGE_LOG_LEVEL))
    throw new Error("startServerProcess reads the address from the info-level 'listening' line");
  const child = spawn(process.execPath, [CLI, "serve"], {
    cwd,
    env: childEnv({ MEMORY_EXCHANGE_PORT: "0", MEMORY_EXCHANGE_HOST: "127.0.0.1", ...env }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  let stderr = "";
  let partial = "";
  const waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  child.stdout!.on("data", (d: Buffer) => {
    partial += d.toString();
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      output.push(line);
      for (const w of [...waiters]) if (w.match(line)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(line));
    }
  });
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    child.on("exit", (code, signal) => resolveExit({ code, signal })),
  );
  const waitForLine = (match: (line: string) => boolean) =>
    new Promise<string>((resolveLine, reject) => {
      const seen = output.find(match);
      if (seen !== undefined) return resolveLine(seen);
      waiters.push({ match, resolve: resolveLine });
      void exit.then(({ code }) => reject(new Error(`server exited (${code}) before the expected line; stderr: ${stderr}`)));
    });
  const parse = (line: string): LogLine | undefined => {
    try {
      const value = JSON.parse(line) as unknown;
      return value && typeof value === "object" ? (value as LogLine) : undefined;
    } catch {
      return undefined;
    }
  };
  // JSON logs: our own "listening" line; pretty logs (not JSON): Fastify's "Server listening at <url>".
  const pretty = /Server listening at (http:\/\/\S+)/;
  const listening = await waitForLine((line) => {
    const json = parse(line);
    return json ? json.msg === "memory-exchange listening" : pretty.test(line);
  });
  const address = parse(listening)?.address ?? pretty.exec(listening)?.[1];
  if (typeof address !== "string") throw new Error(`no address in: ${listening}`);
  return {
    url: address,
    child,
    output,
    logs: () => output.map(parse).filter((l): l is LogLine => l !== undefined),
    stderr: () => stderr,
    waitForLine,
    exit,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exit;
    },
  };
}

/** `keys create` through the binary: the way operators mint keys. */
export async function mintKey(env: Record<string, string>, userId: number, scopes = "read,trade"): Promise<{ key: string; id: number }> {
  const result = await runCli(["keys", "create", "--user-id", String(userId), "--scopes", scopes, "--json"], env);
  if (result.code !== 0) throw new Error(`keys create failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as { key: string; id: number };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
