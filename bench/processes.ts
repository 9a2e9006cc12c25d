import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * Child processes the benchmark measures: the service (from its built
 * binary) and the bare baseline. Each runs in its own process so its RSS is
 * its own, and the load generator never shares its event loop.
 */
export interface ChildServer {
  name: string;
  url: string;
  pid: number;
  /** Resident set size in bytes, read from /proc (Linux) or `ps`. */
  rss(): number;
  /** The last lines the process printed (its log). */
  output(): string;
  /** CPU time (user + system) the process has used so far, in ms (Linux; NaN elsewhere). */
  cpuMs(): number;
  /** SIGTERM, then waits for exit (a CPU profile is written on a clean exit). */
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // not Linux: fall through to ps
  }
  try {
    return Number(execFileSync("ps", ["-o", "rss=", "-p", String(pid)], { encoding: "utf8" }).trim()) * 1024 || 0;
  } catch {
    return 0;
  }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime from /proc/<pid>/stat (fields 14 and 15, after the parenthesised command name). */
export function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/**
 * The pid of a MariaDB/MySQL server running on this machine (the oldest
 * `mariadbd` or `mysqld`), so a run can report the database's CPU per request
 * too; undefined when there is none (a remote database) or pgrep is missing.
 */
export function localDatabaseServerPid(): number | undefined {
  for (const name of ["mariadbd", "mysqld"]) {
    try {
      const pid = Number(execFileSync("pgrep", ["-o", "-x", name], { encoding: "utf8" }).trim());
      if (pid > 0) return pid;
    } catch {
      // not running under this name
    }
  }
  return undefined;
}

async function waitForHttp(url: string, child: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before answering ${url}:\n${log()}`);
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${url} within ${timeoutMs} ms:\n${log()}`);
}

export interface StartOptions {
  name: string;
  /** Node arguments (script and its arguments) */
  args: string[];
  env: Record<string, string>;
  port: number;
  /** path polled until it answers 2xx */
  readyPath: string;
  /** extra node flags (e.g. --cpu-prof) */
  nodeFlags?: string[];
  timeoutMs?: number;
}

export async function startServer(options: StartOptions): Promise<ChildServer> {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), ...options.args], {
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${options.port}`;
  try {
    await waitForHttp(url + options.readyPath, child, () => output, options.timeoutMs ?? 30_000);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    name: options.name,
    url,
    pid: child.pid!,
    rss: () => rssOf(child.pid!),
    cpuMs: () => cpuMsOf(child.pid!),
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a Node script to completion and returns its stdout (throws with its output on failure). */
export async function runNode(args: string[], env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`node ${args.join(" ")} exited ${code}:\n${stderr || stdout}`);
  return stdout;
}
