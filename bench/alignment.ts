/**
 * Alignment under load: does a large xW stall other requests?
 *
 * The service (built binary, SQLite, default alignment settings) holds a
 * 1024 × 1024 float32 matrix W and K listings whose keys and values are
 * float32 [2048, 1024] each — 4096 vectors per purchase, 8.6 GFLOP, the
 * kernel benchmark's shape. `/health` and REST browse run at a steady
 * open-loop rate (latency counted from when each request was due, so a
 * stalled event loop shows in p99), first alone, then while purchases of
 * fresh listings (new digests: every one computes, none is cached) run back
 * to back. With the default inline limit (8 MiB) the 32 MiB aligned payload
 * is not inlined: the purchase answers its payloadUrl and the bench downloads
 * it. Also reported: each aligned purchase end to end, and a repeat purchase
 * (answered from the aligned-result cache).
 *
 *   node --conditions=source --import tsx bench/alignment.ts   (after `pnpm build`)
 *
 * Settings (environment): BENCH_ALIGN_LISTINGS (12), BENCH_ALIGN_HEALTH_RPS
 * (200), BENCH_ALIGN_BROWSE_RPS (50).
 */
import { realpathSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildKvCacheSafetensors, buildSafetensors } from "@memory-exchange/shared";
import { steadyRate, type LoadResult, type Workload } from "./load.js";
import { prepareDatabase, smallKvCache } from "./market.js";
import { freePort, runNode, startServer, type ChildServer } from "./processes.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = resolve(ROOT, "packages/server/dist/cli.js");
const SOURCE = "bench-src";
const TARGET = "bench-tgt";
const ROWS = 2048; // per tensor: keys and values together are 4096 vectors
const K = 1024;
const N = 1024;

export interface AlignmentLoadBenchOptions {
  listings?: number;
  healthRps?: number;
  browseRps?: number;
}

type Latency = Pick<LoadResult, "p50Ms" | "p99Ms" | "rps" | "requests" | "errors">;

export interface AlignmentLoadBenchResult {
  shape: { vectors: number; sourceDim: number; targetDim: number; dtype: "float32" };
  flopsPerPurchase: number;
  machine: { cpu: string; cores: number; node: string };
  idle: { health: Latency; browse: Latency };
  duringAlignment: { health: Latency; browse: Latency; windowS: number; alignedPurchases: number; busyFraction: number };
  /** end to end, client side: purchase request → aligned 32 MiB payload downloaded */
  alignedPurchaseMs: number[];
  /** the purchase request alone (xW computed and stored, the answer carries the aligned payload's URL) */
  purchaseOnlyMs: number[];
  /** FLOPs of one purchase over its median end-to-end time */
  endToEndGflops: number;
  cachedPurchaseMs: number;
  markdown: string;
}

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** Deterministic values in [-0.5, 0.5). */
function fill(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

async function json(response: Response): Promise<any> {
  const body = (await response.json()) as { success?: boolean; data?: unknown };
  if (!response.ok) throw new Error(`${response.url}: ${response.status} ${JSON.stringify(body).slice(0, 500)}`);
  return body.data;
}

async function uploadFile(base: string, key: string, bytes: Uint8Array): Promise<string> {
  const response = await fetch(`${base}/api/v1/payloads`, {
    method: "PUT",
    headers: { ...bearer(key), "content-type": "application/octet-stream" },
    body: bytes,
  });
  return ((await json(response)) as { digest: string }).digest;
}

async function post(base: string, key: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<any> {
  return json(
    await fetch(base + path, { method: "POST", headers: { ...bearer(key), "content-type": "application/json", ...headers }, body: JSON.stringify(body) }),
  );
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const pick = (r: LoadResult): Latency => ({ p50Ms: r.p50Ms, p99Ms: r.p99Ms, rps: r.rps, requests: r.requests, errors: r.errors });

export async function runAlignmentLoadBench(options: AlignmentLoadBenchOptions = {}): Promise<AlignmentLoadBenchResult> {
  const env = process.env;
  const listings = Math.max(3, options.listings ?? Number(env.BENCH_ALIGN_LISTINGS ?? 12));
  const healthRps = options.healthRps ?? Number(env.BENCH_ALIGN_HEALTH_RPS ?? 200);
  const browseRps = options.browseRps ?? Number(env.BENCH_ALIGN_BROWSE_RPS ?? 50);
  const flopsPerPurchase = 2 * (2 * ROWS) * K * N;

  const database = await prepareDatabase("sqlite");
  let service: ChildServer | undefined;
  try {
    const keyOf = async (userId: number, scopes: string) =>
      (
        JSON.parse(
          await runNode([CLI, "keys", "create", "--user-id", String(userId), "--scopes", scopes, "--name", "bench", "--json"], {
            DATABASE_URL: database.url,
            MEMORY_EXCHANGE_LOG_LEVEL: "warn",
          }),
        ) as { key: string }
      ).key;
    const sellerKey = await keyOf(1, "read,trade");
    const adminKey = await keyOf(2, "read,trade,admin");

    const port = await freePort();
    service = await startServer({
      name: "alignment-sqlite",
      args: [CLI, "serve"],
      env: {
        DATABASE_URL: database.url,
        MEMORY_EXCHANGE_PORT: String(port),
        MEMORY_EXCHANGE_HOST: "127.0.0.1",
        MEMORY_EXCHANGE_LOG_LEVEL: "warn",
        MEMORY_EXCHANGE_METRICS_PORT: "",
      },
      port,
      readyPath: "/ready",
    });
    const base = service.url;

    log("alignment: seeding listings, W and payloads");
    for (let i = 0; i < 100; i++) {
      await post(base, sellerKey, "/api/v1/memory/publish", { memory_type: "kv_cache", kv_cache_data: smallKvCache(i), price: 5 });
    }
    const w = buildSafetensors({ w: { dtype: "float32", shape: [K, N], data: fill(K * N, 7) } });
    await post(base, sellerKey, "/api/v1/alignment/matrices", { source_model: SOURCE, target_model: TARGET, matrix: await uploadFile(base, sellerKey, w) });
    const memoryIds: number[] = [];
    for (let i = 0; i < listings; i++) {
      const file = buildKvCacheSafetensors({
        sourceModel: SOURCE,
        keys: { dtype: "float32", shape: [ROWS, K], data: fill(ROWS * K, 100 + i) },
        values: { dtype: "float32", shape: [ROWS, K], data: fill(ROWS * K, 200 + i) },
      });
      const digest = await uploadFile(base, sellerKey, file);
      memoryIds.push((await post(base, sellerKey, "/api/v1/memory/publish", { memory_type: "kv_cache", kv_cache_ref: digest, price: 5 })).memory_id);
    }

    let buyer = 5_000;
    /** A purchase (xW computed, or read from the cache) and the download of the aligned 32 MiB payload from its payloadUrl. */
    const purchase = async (memoryId: number, buyerId: number) => {
      const started = performance.now();
      const headers = { "x-user-id": String(buyerId) };
      const data = await post(base, adminKey, "/api/v1/memory/purchase", { memory_id: memoryId, target_model: TARGET }, headers);
      if (!data.alignment?.applied) throw new Error(`purchase not aligned: ${JSON.stringify(data.alignment)}`);
      const purchaseMs = performance.now() - started;
      const download = await fetch(base + data.payload_url, { headers: { ...bearer(adminKey), ...headers } });
      const size = (await download.arrayBuffer()).byteLength;
      if (download.status !== 200 || size < 2 * ROWS * N * 4) throw new Error(`aligned download: ${download.status}, ${size} bytes`);
      return { ms: performance.now() - started, purchaseMs, cached: data.alignment.cached as boolean };
    };

    // Warm-up (worker spawn, JIT), then one purchase timed to size the measured window.
    const warm = await purchase(memoryIds[0]!, buyer++);
    const timed = await purchase(memoryIds[1]!, buyer++);
    const cached = await purchase(memoryIds[0]!, buyer++);
    if (!cached.cached) throw new Error("repeat purchase was not answered from the cache");

    const health: Workload = { fixed: true, next: () => ({ method: "GET", path: "/health" }) };
    const browse: Workload = {
      fixed: true,
      next: () => ({ method: "GET", path: "/api/v1/memory/browse?memory_type=kv_cache&max_price=50&limit=20", headers: bearer(sellerKey) }),
    };
    const fresh = memoryIds.slice(2);
    const windowS = Math.min(30, Math.max(3, (fresh.length * timed.ms) / 1000));
    const load = () =>
      Promise.all([
        steadyRate(base, health, { rate: healthRps, durationS: windowS, connections: 16 }),
        steadyRate(base, browse, { rate: browseRps, durationS: windowS, connections: 16 }),
      ]);

    log(`alignment: /health at ${healthRps}/s and browse at ${browseRps}/s for ${windowS.toFixed(1)} s, idle`);
    const [idleHealth, idleBrowse] = await load();

    log(`alignment: the same while ${fresh.length} aligned purchases run back to back`);
    const windowStart = performance.now();
    let busyMs = 0;
    const timings: number[] = [];
    const purchaseTimings: number[] = [];
    const purchases = (async () => {
      for (const memoryId of fresh) {
        const start = performance.now() - windowStart;
        if (start > windowS * 1000) break;
        const { ms, purchaseMs } = await purchase(memoryId, buyer++);
        timings.push(ms);
        purchaseTimings.push(purchaseMs);
        busyMs += Math.min(start + ms, windowS * 1000) - start;
      }
    })();
    const [loadedHealth, loadedBrowse] = await load();
    await purchases;

    const result = {
      shape: { vectors: 2 * ROWS, sourceDim: K, targetDim: N, dtype: "float32" as const },
      flopsPerPurchase,
      machine: { cpu: cpus()[0]?.model.trim() ?? "unknown CPU", cores: cpus().length, node: process.versions.node },
      idle: { health: pick(idleHealth), browse: pick(idleBrowse) },
      duringAlignment: {
        health: pick(loadedHealth),
        browse: pick(loadedBrowse),
        windowS,
        alignedPurchases: timings.length,
        busyFraction: Math.min(1, busyMs / (windowS * 1000)),
      },
      alignedPurchaseMs: [warm.ms, timed.ms, ...timings],
      purchaseOnlyMs: [warm.purchaseMs, timed.purchaseMs, ...purchaseTimings],
      endToEndGflops: flopsPerPurchase / median([timed.ms, ...timings]) / 1e6,
      cachedPurchaseMs: cached.ms,
    };
    return { ...result, markdown: markdown(result) };
  } finally {
    await service?.stop().catch(() => undefined);
    await database.drop().catch(() => undefined);
  }
}

function markdown(r: Omit<AlignmentLoadBenchResult, "markdown">): string {
  const f = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(1) : "–");
  const row = (name: string, idle: Latency, loaded: Latency) =>
    `| ${name} | ${f(idle.p50Ms)} | ${f(idle.p99Ms)} | ${f(loaded.p50Ms)} | ${f(loaded.p99Ms)} | ${idle.errors + loaded.errors} |`;
  const d = r.duringAlignment;
  return [
    `W ${r.shape.sourceDim} × ${r.shape.targetDim} over ${r.shape.vectors} vectors (${r.shape.dtype}, ${(r.flopsPerPurchase / 1e9).toFixed(1)} GFLOP per purchase), ` +
      `SQLite, ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}.`,
    "",
    `| open-loop latency (ms) | idle p50 | idle p99 | during alignment p50 | during alignment p99 | errors |`,
    `|---|---|---|---|---|---|`,
    row(`GET /health at ${Math.round(r.idle.health.rps)}/s`, r.idle.health, d.health),
    row(`REST browse at ${Math.round(r.idle.browse.rps)}/s`, r.idle.browse, d.browse),
    "",
    `During the ${d.windowS.toFixed(1)} s window ${d.alignedPurchases} aligned purchases ran back to back ` +
      `(an alignment was running ${(d.busyFraction * 100).toFixed(0)}% of the window).`,
    `Aligned purchase (xW computed and stored): ${r.purchaseOnlyMs.map((ms) => f(ms)).join(", ")} ms; ` +
      `with the download of the 32 MiB aligned payload: ${r.alignedPurchaseMs.map((ms) => f(ms)).join(", ")} ms ` +
      `(the first includes the worker start); ${r.endToEndGflops.toFixed(2)} GFLOP/s end to end. ` +
      `Repeat purchase answered from the aligned-result cache, download included: ${f(r.cachedPurchaseMs)} ms.`,
  ].join("\n");
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  const result = await runAlignmentLoadBench();
  console.log(result.markdown);
}
