import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createMemoryExchangeClient, type MemoryExchangeClient } from "@memory-exchange/client";
import { createApiKey, createStore, openDatabase, parseDatabaseUrl } from "@memory-exchange/server";
import { kvCacheSafetensorsLayout } from "@memory-exchange/shared";
import { createTestDatabase, testDialects, type TestDatabase } from "../packages/server/test/support/databases.js";
import { REPO_ROOT, scratchDir } from "./support/server-process.js";

/**
 * Real-size payloads end to end with bounded memory: a 256 MiB safetensors
 * file (Llama-3-8B's shape: 32 layers × 8 KV heads × 2048 tokens × 128, float16)
 * is streamed up through the client SDK, bought, and streamed back down; the
 * download must be byte-identical, and the server process's RSS may grow by
 * less than 128 MiB over its warmed-up level while it happens. The server runs
 * in its own process (from the TypeScript sources, so never a stale build),
 * its RSS sampled from /proc.
 */

const MiB = 1024 * 1024;
const SHAPE = [32, 8, 2048, 128];
const RSS_BUDGET = 128 * MiB;

/** A KV-cache file streamed piece by piece (never whole in memory), with its SHA-256 once fully read. */
function generatedKvCache(
  sourceModel: string,
  shape = SHAPE,
): { size: number; stream: ReadableStream<Uint8Array>; digest: Promise<string> } {
  const layout = kvCacheSafetensorsLayout({
    sourceModel,
    keys: { dtype: "float16", shape },
    values: { dtype: "float16", shape },
  });
  const hash = createHash("sha256");
  let resolveDigest!: (digest: string) => void;
  const digest = new Promise<string>((r) => (resolveDigest = r));
  let remaining = layout.size - layout.header.length;
  let headerSent = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!headerSent) {
        headerSent = true;
        hash.update(layout.header);
        controller.enqueue(layout.header);
        return;
      }
      if (remaining === 0) {
        resolveDigest(hash.digest("hex"));
        controller.close();
        return;
      }
      const piece = new Uint8Array(Math.min(MiB, remaining));
      randomFillSync(piece);
      // Clear the top exponent bit of every float16: always finite.
      const halves = new Uint16Array(piece.buffer);
      for (let i = 0; i < halves.length; i++) halves[i]! &= 0xbfff;
      remaining -= piece.length;
      hash.update(piece);
      controller.enqueue(piece);
    },
  });
  return { size: layout.size, stream, digest };
}

interface Server {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startServer(env: Record<string, string>): Promise<Server> {
  // The repository's tsx, by absolute URL: the working directory is a scratch one (no stray .env).
  const tsx = pathToFileURL(createRequire(join(REPO_ROOT, "package.json")).resolve("tsx")).href;
  const child = spawn(process.execPath, ["--conditions=source", "--import", tsx, join(REPO_ROOT, "packages/server/src/cli.ts"), "serve"], {
    cwd: scratchDir(),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, MEMORY_EXCHANGE_PORT: "0", MEMORY_EXCHANGE_HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const match = /"address":"(http:\/\/[^"]+)"[^\n]*memory-exchange listening/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.on("exit", (code) => reject(new Error(`server exited (${code}): ${stderr}`)));
  });
  return {
    url,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.on("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** Samples a process's resident set size from /proc every few milliseconds. */
function rssSampler(pid: number) {
  const read = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
  let peak = read();
  const timer = setInterval(() => (peak = Math.max(peak, read())), 20);
  return {
    read,
    /** Highest RSS since the last reset. */
    peak: () => Math.max(peak, read()),
    reset: () => (peak = read()),
    stop: () => clearInterval(timer),
  };
}

async function sha256Stream(body: ReadableStream<Uint8Array>): Promise<{ digest: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const piece of body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(piece);
    bytes += piece.length;
  }
  return { digest: hash.digest("hex"), bytes };
}

const mb = (bytes: number) => (bytes / MiB).toFixed(1);

for (const dialect of await testDialects()) {
  describe.runIf(existsSync("/proc/self/status"))(`256 MiB payload through a server process (${dialect})`, () => {
    let database: TestDatabase;
    let server: Server;
    let seller: MemoryExchangeClient;
    let buyer: MemoryExchangeClient;

    beforeAll(async () => {
      database = await createTestDatabase(dialect);
      server = await startServer({ DATABASE_URL: database.url, MEMORY_EXCHANGE_LOG_LEVEL: "info" });
      const direct = await openDatabase(parseDatabaseUrl(database.url));
      const store = createStore(direct);
      const key = async (userId: number) => (await createApiKey(store, { userId, name: "large", scopes: ["read", "trade"] })).key;
      seller = createMemoryExchangeClient({ url: server.url, apiKey: await key(1) });
      buyer = createMemoryExchangeClient({ url: server.url, apiKey: await key(2) });
      await direct.close();
    }, 120_000);

    afterAll(async () => {
      await server?.stop();
      await database?.drop();
    });

    test("uploads, sells and downloads it byte-identical with bounded server memory", async () => {
      const rss = rssSampler(server.child.pid!);
      try {
        // Warm up every code path (JIT, pools, prepared statements) with a 16 MiB round trip first.
        const warm = generatedKvCache("warm-up", [32, 8, 128, 128]);
        await seller.payloads.upload(warm.stream).then(async (up) => {
          const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheRef: up.digest, price: 1 });
          await sha256Stream((await seller.payloads.download({ memoryId })).body);
        });
        const baseline = rss.read();
        rss.reset();

        const file = generatedKvCache("llama-3-8b");
        let started = performance.now();
        const uploaded = await seller.payloads.upload(file.stream);
        const uploadSeconds = (performance.now() - started) / 1000;
        expect(uploaded.digest).toBe(await file.digest);
        expect(uploaded.size).toBe(file.size);
        expect(uploaded.tensors.keys).toEqual({ dtype: "float16", shape: SHAPE });

        const { memoryId } = await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheRef: uploaded.digest, price: 9.99 });
        const purchase = await buyer.memory.purchase.mutate({ memoryId, targetModel: "llama-3-8b" });
        // 256 MiB is far above the 8 MiB inline limit: the answer points at the download instead.
        expect(purchase.memory.kvCacheData).toBeUndefined();
        expect(purchase.payloadUrl).toBe(`/api/v1/memory/${memoryId}/payload`);

        started = performance.now();
        const download = await buyer.payloads.download({ memoryId });
        expect(download.status).toBe(200);
        expect(download.contentLength).toBe(file.size);
        expect(download.digest).toBe(uploaded.digest);
        const received = await sha256Stream(download.body);
        const downloadSeconds = (performance.now() - started) / 1000;
        expect(received).toEqual({ digest: uploaded.digest, bytes: file.size });

        const growth = rss.peak() - baseline;
        console.log(
          `[payload-large ${dialect}] ${mb(file.size)} MiB: upload ${(file.size / MiB / uploadSeconds).toFixed(0)} MiB/s, ` +
            `download ${(file.size / MiB / downloadSeconds).toFixed(0)} MiB/s; server RSS ${mb(baseline)} MiB warmed up, ` +
            `peak ${mb(rss.peak())} MiB, growth ${mb(growth)} MiB (budget ${mb(RSS_BUDGET)} MiB)`,
        );
        expect(growth).toBeLessThan(RSS_BUDGET);
      } finally {
        rss.stop();
      }
    }, 180_000);
  });
}
