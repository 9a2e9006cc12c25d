import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

/**
 * The SDK as shipped: `pnpm pack` the client and shared packages, install the
 * tarballs into a fresh npm project (no server package, no workspace), and
 * type-check a consumer in strict mode under NodeNext and Bundler resolution.
 * Wrong calls must fail to compile.
 */
const repo = resolve(import.meta.dirname, "..");
const tsc = join(repo, "node_modules", "typescript", "bin", "tsc");
let dir: string;

const consumer = `
import { createMemoryExchangeClient, MemoryExchangeError, isMemoryExchangeError, ERROR_CODES, type MemoryListing, type RouterOutputs, type ErrorCode } from "@memory-exchange/client";

const mx = createMemoryExchangeClient({ url: "http://localhost:8080", apiKey: "mx_x", actAsUserId: 42 });

export async function main(): Promise<void> {
  const published: { memoryId: number } = await mx.memory.publish.mutate({
    memoryType: "kv_cache",
    kvCacheData: { sourceModel: "llama-3-8b", keys: [[0.1, 0.2]], values: [[0.3, 0.4]], metadata: { tokenCount: 1 } },
    price: 9.99,
  });
  const encoded = await mx.memory.publish.mutate({
    memoryType: "long_term_memory",
    kvCacheData: { sourceModel: "m", keys: { dtype: "float16", shape: [1, 2], data: "AAAAAA==" }, values: [[1, 2]] },
    price: 1,
  });
  const page = await mx.memory.browse.query({ memoryType: "kv_cache", minPrice: 5, maxPrice: 50, limit: 20 });
  const first: MemoryListing | undefined = page.memories[0];
  const created: Date | undefined = first?.createdAt;
  const next: string | null = page.nextCursor;
  const bought = await mx.memory.purchase.mutate({ memoryId: published.memoryId, targetModel: "gpt-4" });
  const reason: string | undefined = bought.alignment.applied ? undefined : bought.alignment.reason;
  const use: RouterOutputs["reasoningChain"]["use"] = await mx.reasoningChain.use.mutate({ chainId: 1, inputData: { q: "x" }, targetModel: "gpt-4" });
  const volume: number = (await mx.stats.get.query()).totalVolume;
  const history = await mx.memory.history.query({ role: "buyer" });
  const role: "buyer" | "seller" | undefined = history.transactions[0]?.role;
  try {
    await mx.memory.get.query({ memoryId: encoded.memoryId });
  } catch (error) {
    if (isMemoryExchangeError(error)) {
      const code: ErrorCode = error.code;
      const status: number = error.status;
      console.log(code, status, error.details, error instanceof MemoryExchangeError, ERROR_CODES.length);
    }
  }
  console.log(created, next, reason, use.chain.usageCount, volume, role);

  // @ts-expect-error price must be a number
  await mx.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: { sourceModel: "m", keys: [1], values: [1] }, price: "cheap" });
  // @ts-expect-error unknown memory type
  await mx.memory.publish.mutate({ memoryType: "video", kvCacheData: { sourceModel: "m", keys: [1], values: [1] }, price: 1 });
  // @ts-expect-error kvCacheData needs sourceModel
  await mx.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: { keys: [1], values: [1] }, price: 1 });
  // @ts-expect-error role is buyer | seller | both
  await mx.memory.history.query({ role: "everyone" });
  // @ts-expect-error no such procedure
  await mx.memory.steal.mutate({ memoryId: 1 });
  // @ts-expect-error outputs are typed too
  const wrong: string = (await mx.stats.get.query()).totalMemories;
  console.log(wrong);
}
`;

const wrongCall = `
import { createMemoryExchangeClient } from "@memory-exchange/client";
const mx = createMemoryExchangeClient({ url: "http://localhost:8080", apiKey: "mx_x" });
await mx.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: { sourceModel: "m", keys: [1], values: [1] }, price: "cheap" });
`;

function tsconfig(moduleResolution: "NodeNext" | "Bundler", files: string[]) {
  return JSON.stringify({
    compilerOptions: {
      strict: true,
      noEmit: true,
      target: "ES2022",
      // @trpc/server's declarations use Disposable (from @types/node or this lib).
      lib: ["ES2022", "DOM", "ESNext.Disposable"],
      module: moduleResolution === "NodeNext" ? "NodeNext" : "ESNext",
      moduleResolution,
      types: [],
      skipLibCheck: false,
    },
    files,
  });
}

function typecheck(project: string) {
  return spawnSync(process.execPath, [tsc, "-p", project], { cwd: dir, encoding: "utf8" });
}

describe("the packed client in a fresh TypeScript project", () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mx-consumer-"));
    for (const pkg of ["shared", "client"]) {
      const packageDir = join(repo, "packages", pkg);
      if (!existsSync(join(packageDir, "dist", "index.d.ts"))) throw new Error(`packages/${pkg} is not built: run pnpm build (pnpm test does)`);
      execFileSync("pnpm", ["pack", "--pack-destination", dir], { cwd: packageDir, stdio: "pipe" });
    }
    const tarballs = readdirSync(dir).filter((f) => f.endsWith(".tgz"));
    const tarball = (name: string) => `file:./${tarballs.find((f) => f.startsWith(`memory-exchange-${name}-`))}`;
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { "@memory-exchange/client": tarball("client"), "@memory-exchange/shared": tarball("shared") } }),
    );
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], { cwd: dir, stdio: "pipe" });
    writeFileSync(join(dir, "consumer.ts"), consumer);
    writeFileSync(join(dir, "wrong.ts"), wrongCall);
    writeFileSync(join(dir, "tsconfig.nodenext.json"), tsconfig("NodeNext", ["consumer.ts"]));
    writeFileSync(join(dir, "tsconfig.bundler.json"), tsconfig("Bundler", ["consumer.ts"]));
    writeFileSync(join(dir, "tsconfig.wrong.json"), tsconfig("NodeNext", ["wrong.ts"]));
  }, 240_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("installs without the server package or any server dependency", () => {
    const installed = readdirSync(join(dir, "node_modules")).flatMap((entry) =>
      entry.startsWith("@") ? readdirSync(join(dir, "node_modules", entry)).map((name) => `${entry}/${name}`) : [entry],
    );
    expect(installed).toContain("@memory-exchange/client");
    for (const forbidden of ["@memory-exchange/server", "drizzle-orm", "mysql2", "better-sqlite3", "fastify", "pino"]) expect(installed).not.toContain(forbidden);
  });

  test.each(["nodenext", "bundler"])("type-checks in strict mode with moduleResolution %s (wrong calls flagged)", (mode) => {
    const result = typecheck(`tsconfig.${mode}.json`);
    expect(result.stdout + result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  test("a wrong call fails to compile, naming the field", () => {
    const result = typecheck("tsconfig.wrong.json");
    expect(result.status).not.toBe(0);
    // the error points at the `price` property of the call
    const line = wrongCall.split("\n")[3]!;
    expect(result.stdout).toContain(`wrong.ts(4,${line.indexOf("price") + 1}): error TS2322`);
  });

  test("imports at run time with only its own dependencies", () => {
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", "const m = await import('@memory-exchange/client'); console.log(typeof m.createMemoryExchangeClient, m.ERROR_CODES.length > 5)"], { cwd: dir, encoding: "utf8" });
    expect(out.trim()).toBe("function true");
  });
});
