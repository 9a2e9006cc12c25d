/**
 * `pnpm bench`: the service under load next to a bare-metal baseline, in one
 * run on one machine, on SQLite and (when reachable) MariaDB/MySQL.
 *
 * For each dialect: a fresh database with 10,000 listings and 1,000 chains;
 * the service from its built binary and a minimal Fastify + raw-driver server
 * (bench/baseline-server.ts), each a child process; then every scenario
 * against both, reported as req/s, latency p50/p99, errors, the service's
 * RSS and the ratio to the baseline. Then latency at half the measured
 * maximum (open-loop), idle keep-alive connections and memory, and the
 * kernel and payload benchmarks when present. Results go to
 * bench/results/latest.json and a Markdown report on stdout.
 *
 * Settings (environment): BENCH_DIALECTS (sqlite,mysql), BENCH_DURATION_S (5),
 * BENCH_SLICES (5: the service and the baseline take turns, slice by slice), BENCH_WARMUP_S (1),
 * BENCH_JIT_WARMUP_S (8: every server runs its read-only scenarios' requests before the first scenario),
 * BENCH_CONNECTIONS (32), BENCH_IDLE_CONNECTIONS (15000,
 * capped by the open-files limit), BENCH_SCENARIOS (comma list to run only
 * some), BENCH_SKIP (comma list: kernel, alignment, payloads, idle, steady),
 * BENCH_CPU_PROF_DIR (run the service and the baseline with --cpu-prof, profiles there),
 * BENCH_FROM_SOURCE (1: the service runs from its TypeScript sources, so profiles name packages),
 * BENCH_IDLE_SETTLE_S (25: how long a fresh idle service is watched for its settled RSS),
 * BENCH_AB (the dist/cli.js of another build of the service: it serves every scenario too, in the same
 * turns on the same database, and the report compares the two builds), BENCH_AB_NODE_OPTIONS (NODE_OPTIONS
 * for that other build only: BENCH_AB set to this build's own dist/cli.js compares Node or V8 flags),
 * MX_BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306/mx_bench).
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createMemoryExchangeClient } from "@memory-exchange/client";
import { alternatingMaxThroughput, maxThroughput, sliceOrder, steadyRate, type LoadResult, type RequestSpec, type Workload } from "./load.js";
import { mysqlReachable, prepareDatabase, seedMarket, smallKvCache, type Dialect } from "./market.js";
import { cpuMsOf, freePort, localDatabaseServerPid, runNode, startServer, type ChildServer } from "./processes.js";
import { renderReport, type BenchReport, type DialectReport, type MeasuredLoad, type ScenarioResult } from "./report.js";
import {
  BROWSE_INPUT,
  chainUseWorkload,
  healthWorkload,
  mixedWorkload,
  publishWorkload,
  purchaseWorkload,
  restBrowseWorkload,
  trpcBrowseWorkload,
  type MarketRefs,
} from "./scenarios.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = resolve(ROOT, "packages/server/dist/cli.js");
const BASELINE = resolve(ROOT, "bench/baseline-server.ts");
const IDLE_HOLDER = resolve(ROOT, "bench/idle-connections.ts");
const TSX = ["--conditions=source", "--import", "tsx"];

const env = process.env;
/** BENCH_FROM_SOURCE=1 runs the service from its TypeScript (tsx) instead of the bundle: slower, but a profile names each package. */
const SERVE = env.BENCH_FROM_SOURCE === "1" ? [...TSX, resolve(ROOT, "packages/server/src/cli.ts"), "serve"] : [CLI, "serve"];
const DURATION_S = Number(env.BENCH_DURATION_S ?? 5);
const WARMUP_S = Number(env.BENCH_WARMUP_S ?? 1);
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 32);
const SLICES = Number(env.BENCH_SLICES ?? 5);
const JIT_WARMUP_S = Number(env.BENCH_JIT_WARMUP_S ?? 8);
const ONLY = env.BENCH_SCENARIOS ? new Set(env.BENCH_SCENARIOS.split(",")) : undefined;
const SKIP = new Set((env.BENCH_SKIP ?? "").split(",").filter(Boolean));
const PROFILE_DIR = env.BENCH_CPU_PROF_DIR ? resolve(env.BENCH_CPU_PROF_DIR) : undefined;
const IDLE_SETTLE_S = SKIP.has("idle") ? 1 : Number(env.BENCH_IDLE_SETTLE_S ?? 25);
/** Another build's binary (BENCH_AB): the "other" service, compared with this checkout's. */
const OTHER_CLI = env.BENCH_AB ? resolve(env.BENCH_AB) : undefined;
const OTHER_ENV: Record<string, string> = env.BENCH_AB_NODE_OPTIONS ? { NODE_OPTIONS: env.BENCH_AB_NODE_OPTIONS } : {};
/** The service with its read cache off: browse query for query against the driver baseline. */
const UNCACHED_ENV = { MEMORY_EXCHANGE_READ_CACHE_TTL_MS: "0" };
const LISTINGS = 10_000;
const CHAINS = 1_000;

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const mb = (bytes: number) => bytes / 1024 / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function openFilesLimit(): number {
  try {
    return Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim()) || 1024;
  } catch {
    return 1024;
  }
}

async function startService(
  dialect: Dialect,
  url: string,
  extraEnv: Record<string, string> = {},
  label = "service",
  serve = SERVE,
): Promise<ChildServer> {
  const port = await freePort();
  if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
  return startServer({
    name: `${label}-${dialect}`,
    args: serve,
    nodeFlags: !PROFILE_DIR
      ? []
      : env.BENCH_FROM_SOURCE === "1"
        ? // one directory per run: tsx's loader thread writes a profile of its own
          ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}/${label}-${dialect}-${Date.now()}`]
        : ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${label}-${dialect}-${Date.now()}.cpuprofile`],
    env: {
      DATABASE_URL: url,
      MEMORY_EXCHANGE_PORT: String(port),
      MEMORY_EXCHANGE_HOST: "127.0.0.1",
      MEMORY_EXCHANGE_LOG_LEVEL: "warn",
      MEMORY_EXCHANGE_METRICS_PORT: "",
      ...extraEnv,
    },
    port,
    readyPath: "/ready",
  });
}

async function startBaseline(dialect: Dialect, url: string): Promise<ChildServer> {
  const port = await freePort();
  return startServer({
    name: `baseline-${dialect}`,
    args: [...TSX, BASELINE],
    // one directory per baseline: tsx's loader thread writes a profile of its own
    nodeFlags: PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}/baseline-${dialect}-${Date.now()}`] : [],
    env: { BASELINE_DATABASE_URL: url, BASELINE_PORT: String(port) },
    port,
    readyPath: "/health",
  });
}

async function mintKey(url: string, userId: number, scopes: string): Promise<string> {
  const out = await runNode([CLI, "keys", "create", "--user-id", String(userId), "--scopes", scopes, "--name", "bench", "--json"], {
    DATABASE_URL: url,
    MEMORY_EXCHANGE_LOG_LEVEL: "warn",
  });
  return (JSON.parse(out) as { key: string }).key;
}

async function call(base: string, spec: RequestSpec): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(base + spec.path, {
    method: spec.method,
    headers: { ...(spec.body !== undefined ? { "content-type": "application/json" } : {}), ...spec.headers },
    body: spec.body,
  });
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: response.status, body };
}

/** Publishes one listing and one chain through REST (real payload rows) and returns their payload references. */
async function publishTemplates(base: string, adminKey: string) {
  const headers = { authorization: `Bearer ${adminKey}` };
  const kvCache = smallKvCache(-1);
  const memory = await call(base, {
    method: "POST",
    path: "/api/v1/memory/publish",
    headers,
    body: JSON.stringify({ memory_type: "kv_cache", kv_cache_data: kvCache, price: 10, description: "template" }),
  });
  const chain = await call(base, {
    method: "POST",
    path: "/api/v1/reasoning-chain/publish",
    headers,
    body: JSON.stringify({
      chain_name: "template",
      description: "template chain",
      category: "math",
      kv_cache_snapshot: kvCache,
      source_model: kvCache.sourceModel,
      price_per_use: 0.5,
      step_count: 3,
    }),
  });
  if (memory.status !== 201 || chain.status !== 201)
    throw new Error(`template publish failed: ${JSON.stringify(memory.body)} ${JSON.stringify(chain.body)}`);
  const memoryId = (memory.body.data as { memory_id: number }).memory_id;
  const chainId = (chain.body.data as { chain_id: number }).chain_id;
  const listing = (await call(base, { method: "GET", path: `/api/v1/memory/${memoryId}`, headers })).body.data as Record<string, unknown>;
  const chainRow = (await call(base, { method: "GET", path: `/api/v1/reasoning-chain/${chainId}`, headers })).body.data as Record<string, unknown>;
  const ref = (row: Record<string, unknown>) => ({ payloadDigest: String(row.payload_digest), payloadSize: Number(row.payload_size) });
  if (!listing?.payload_digest || !chainRow?.payload_digest) throw new Error("templates have no payload digest");
  return { listing: ref(listing), chain: ref(chainRow) };
}

/** The exact request the typed client sends for `memory.browse` (batched GET, superjson input), captured from a real call. */
async function captureTrpcBrowse(base: string, apiKey: string): Promise<RequestSpec> {
  let captured: RequestSpec | undefined;
  const client = createMemoryExchangeClient({
    url: base,
    apiKey,
    fetch: async (input, init) => {
      const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
      const headers = Object.fromEntries(new Headers(init?.headers).entries());
      captured = { method: "GET", path: url.pathname + url.search, headers };
      return fetch(input, init);
    },
  });
  const page = await client.memory.browse.query(BROWSE_INPUT);
  if (!captured || page.memories.length === 0) throw new Error("tRPC browse capture failed");
  return captured;
}

/** Every listing and chain id, from the REST browse pages (newest first). */
async function collectIds(base: string, key: string, kind: "memory" | "reasoning-chain"): Promise<number[]> {
  const ids: number[] = [];
  for (let cursor: string | null | undefined; ; ) {
    const path = `/api/v1/${kind}/browse?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const { status, body } = await call(base, { method: "GET", path, headers: { authorization: `Bearer ${key}` } });
    if (status !== 200) throw new Error(`${path}: ${status} ${JSON.stringify(body)}`);
    const data = body.data as { memories?: { id: number }[]; chains?: { id: number }[]; next_cursor: string | null };
    ids.push(...(data.memories ?? data.chains ?? []).map((row) => row.id));
    cursor = data.next_cursor;
    if (!cursor) return ids;
  }
}

/** Checks one request answers 2xx on both servers before it is measured. */
async function checkWorkload(name: string, checks: [ChildServer, Workload][]) {
  for (const [server, workload] of checks) {
    const { status, body } = await call(server.url, workload.next(0));
    if (status < 200 || status >= 300)
      throw new Error(`${name} on ${server.name}: ${status} ${JSON.stringify(body).slice(0, 500)}\n${server.output().slice(-3000)}`);
  }
}

/**
 * Samples a server under load: its peak RSS, and the CPU time it used per
 * request (user + system, over the measured stretches only), which stays
 * comparable when other processes compete for the cores and req/s does not.
 * With the pid of a local database server, its CPU per request too: it shares
 * the cores, so a statement that costs the database more lowers req/s.
 * `start`/`stop` bracket each measured stretch (one run, or each slice of an
 * alternating one).
 */
function serverMeter(server: ChildServer, databasePid?: number) {
  let peak = server.rss();
  let cpuMs = 0;
  let dbCpuMs = 0;
  let cpuStart = NaN;
  let dbCpuStart = NaN;
  const timer = setInterval(() => (peak = Math.max(peak, server.rss())), 250);
  return {
    start() {
      cpuStart = server.cpuMs();
      if (databasePid) dbCpuStart = cpuMsOf(databasePid);
    },
    stop() {
      cpuMs += server.cpuMs() - cpuStart;
      if (databasePid) dbCpuMs += cpuMsOf(databasePid) - dbCpuStart;
    },
    close: () => clearInterval(timer),
    result<T extends LoadResult>(load: T): T & MeasuredLoad {
      const perRequest = (ms: number) => (ms * 1000) / Math.max(1, load.requests);
      const dbCpuUsPerRequest = databasePid ? perRequest(dbCpuMs) : NaN;
      return {
        ...load,
        rssMb: mb(Math.max(peak, server.rss())),
        cpuUsPerRequest: perRequest(cpuMs),
        ...(Number.isFinite(dbCpuUsPerRequest) ? { dbCpuUsPerRequest } : {}),
      };
    },
  };
}

/** One contiguous load run on one server, metered from `onMeasureStart` (after its warm-up) to its end. */
async function measured<T extends LoadResult>(server: ChildServer, run: (onMeasureStart: () => void) => Promise<T>, databasePid?: number) {
  const meter = serverMeter(server, databasePid);
  meter.start();
  try {
    const load = await run(() => meter.start());
    meter.stop();
    return meter.result(load);
  } finally {
    meter.close();
  }
}

/** The maximum throughput of each server (the service and its baseline), measured in alternating slices, each server metered over its own. */
async function measuredMaxThroughputs(
  sides: [[ChildServer, Workload], ...[ChildServer, Workload][]],
  databasePid?: number,
): Promise<[MeasuredLoad, ...(MeasuredLoad | undefined)[]]> {
  const meters = sides.map(([server]) => serverMeter(server, databasePid));
  try {
    const loads = await alternatingMaxThroughput(
      sides.map(([server, workload], i) => ({ url: server.url, workload, onSliceStart: meters[i]!.start, onSliceEnd: meters[i]!.stop })),
      { connections: CONNECTIONS, durationS: DURATION_S, warmupS: WARMUP_S, slices: SLICES },
    );
    return loads.map((load, i) => meters[i]!.result(load)) as [MeasuredLoad, ...MeasuredLoad[]];
  } finally {
    for (const meter of meters) meter.close();
  }
}

interface Scenario {
  name: string;
  title: string;
  service: ChildServer;
  /** the same service from the other build (BENCH_AB) */
  other?: ChildServer;
  workload: () => Workload;
  baseline: boolean;
  /** what the baseline serves instead, when it has no such route (tRPC → the same SQL over REST) */
  baselineWorkload?: () => Workload;
  /** measured again at half the maximum rate for the p99 target */
  steady?: boolean;
  /** its requests write (left out of the warm-up, see `warmUp`) */
  writes?: boolean;
}

/** Requests of several workloads in turn, each workload numbering its own. */
function roundRobin(workloads: Workload[]): Workload {
  const counters = workloads.map(() => 0);
  return {
    next: (i) => {
      const k = i % workloads.length;
      return workloads[k]!.next(counters[k]!++);
    },
  };
}

/**
 * Before the first scenario, each server runs the requests of every
 * read-only scenario it will serve, in turn, for `JIT_WARMUP_S` seconds (not
 * measured). Without it, a server process met a request path for the first
 * time in the scenario that measured it. The baseline had already served the
 * uncached browse's query in the cached-browse scenario before. The service's
 * cache-off process had served it only once, in the scenario's check request. With `--trace-opt`,
 * V8 optimized 293 functions of that process during the scenario's 1 s
 * warm-up and 5 s run, against ~30 in each later round of the same
 * measurement, and ~30 after 35 s idle (idle time itself loses nothing).
 * That first round cost 442–672 µs per request against 328–507 µs in the
 * later ones. Steady state is what the ratios compare.
 */
async function warmUp(scenarios: Scenario[], baseline: ChildServer) {
  if (JIT_WARMUP_S <= 0) return;
  const byServer = new Map<ChildServer, Workload[]>();
  const add = (server: ChildServer, workload: Workload) => byServer.set(server, [...(byServer.get(server) ?? []), workload]);
  // Writes are left out: with a warm-up that also published, purchased and used chains, /health read 0.91× and
  // 0.78× on SQLite and 0.85× and 0.87× on MariaDB (1.03–1.05× / 0.96–0.99× in the runs before), and the database
  // the read scenarios measure was no longer the seeded one. Both servers meet the write paths first in their scenarios.
  for (const scenario of scenarios.filter((s) => !s.writes)) {
    add(scenario.service, scenario.workload());
    if (scenario.other) add(scenario.other, scenario.workload());
    if (scenario.baseline) add(baseline, (scenario.baselineWorkload ?? scenario.workload)());
  }
  for (const [server, workloads] of byServer) {
    log(`warming up ${server.name}: ${workloads.length} workloads in turn for ${JIT_WARMUP_S} s`);
    await maxThroughput(server.url, roundRobin(workloads), { connections: CONNECTIONS, durationS: JIT_WARMUP_S, warmupS: 0 });
  }
}

/**
 * RSS per idle connection, two ways: the average over all of them (RSS after
 * against before), and the marginal cost of the last two thirds (RSS at
 * `count` against RSS at `count / 3`). The average also carries what a server
 * allocates once as connections arrive — V8 growing a young generation that
 * was small when the first one came, pools — the marginal figure does not.
 */
async function holdIdleConnections(server: ChildServer, count: number) {
  const port = new URL(server.url).port;
  // Warm the server first so JIT and pools are not counted as connection memory.
  await maxThroughput(server.url, healthWorkload(), { connections: 8, durationS: 1, warmupS: 0 });
  await sleep(1500);
  const before = server.rss();
  const first = Math.round(count / 3);
  const holder = spawn(process.execPath, [...TSX, IDLE_HOLDER, port, `${first},${count}`], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<never>((_, reject) => holder.once("exit", (code) => reject(new Error(`idle-connection holder exited ${code}`))));
  exited.catch(() => undefined);
  const lines = createInterface({ input: holder.stdout })[Symbol.asyncIterator]();
  /** The holder's next report once it has settled, with the server's RSS 2 s later. */
  const step = async () => {
    const line = await Promise.race([lines.next(), exited]);
    if (line.done) throw new Error("idle-connection holder closed its output");
    const { open, failed } = JSON.parse(line.value) as { open: number; failed: number };
    await sleep(2000);
    return { open, failed, rss: server.rss() };
  };
  const third = await step();
  holder.stdin.write("next\n");
  const all = await step();
  holder.stdin.end();
  await new Promise((r) => holder.once("exit", r));
  return {
    requested: count,
    open: all.open,
    failed: all.failed,
    rssBeforeMb: mb(before),
    openAtThird: third.open,
    rssAtThirdMb: mb(third.rss),
    rssAfterMb: mb(all.rss),
    bytesPerConnection: all.open ? (all.rss - before) / all.open : NaN,
    marginalBytesPerConnection: all.open > third.open ? (all.rss - third.rss) / (all.open - third.open) : NaN,
  };
}

/**
 * A fresh service left alone (the first start on the database: it migrates):
 * its RSS 1 s after it answers, then the lowest over the next seconds — V8's
 * memory reducer shrinks the heap of an idle process some seconds after start.
 */
async function idleMemory(dialect: Dialect, url: string) {
  const service = await startService(dialect, url, {}, "idle");
  try {
    await sleep(1000);
    const idleRssMb = mb(service.rss());
    if (IDLE_SETTLE_S <= 1) return { idleRssMb };
    let lowest = { mb: idleRssMb, atS: 1 };
    for (let s = 2; s <= IDLE_SETTLE_S; s++) {
      await sleep(1000);
      const now = mb(service.rss());
      if (now < lowest.mb) lowest = { mb: now, atS: s };
    }
    return { idleRssMb, idleRssSettledMb: lowest.mb, idleRssSettledAtS: lowest.atS, idleSettleS: IDLE_SETTLE_S };
  } finally {
    await service.stop();
  }
}

async function benchDialect(dialect: Dialect): Promise<DialectReport> {
  const started = Date.now();
  log(`${dialect}: preparing database`);
  const database = await prepareDatabase(dialect);
  const servers: ChildServer[] = [];
  try {
    const adminKey = await mintKey(database.url, 1, "read,trade,admin");
    const readerKey = await mintKey(database.url, 2, "read,trade");

    const idle = await idleMemory(dialect, database.url);
    const service = await startService(dialect, database.url);
    servers.push(service);

    const templates = await publishTemplates(service.url, adminKey);
    log(`${dialect}: seeding ${LISTINGS} listings and ${CHAINS} chains`);
    await seedMarket(database.url, { listings: LISTINGS - 1, chains: CHAINS - 1 }, templates);
    const baseline = await startBaseline(dialect, database.url);
    servers.push(baseline);
    // The same service with the read cache off: browse against the driver baseline, query for query.
    const uncached = await startService(dialect, database.url, UNCACHED_ENV, "uncached");
    servers.push(uncached);
    // BENCH_AB: the other build, cached and not, each beside a new instance of this build started with it, which
    // stands in for this build's service in every scenario: the two are the same age (the first service has
    // served the setup's requests; an instance of the same build compared with it read up to 1.20× apart).
    const pairs = new Map<ChildServer, [ChildServer, ChildServer]>();
    if (OTHER_CLI)
      for (const [server, extra, label] of [
        [service, {}, "this"],
        [uncached, UNCACHED_ENV, "this-uncached"],
      ] as const) {
        const mine = await startService(dialect, database.url, extra, label);
        const other = await startService(dialect, database.url, { ...OTHER_ENV, ...extra }, label.replace("this", "other"), [OTHER_CLI, "serve"]);
        servers.push(mine, other);
        pairs.set(server, [mine, other]);
      }

    const refs: MarketRefs = {
      adminKey,
      readerKey,
      listingIds: await collectIds(service.url, readerKey, "memory"),
      chainIds: await collectIds(service.url, readerKey, "reasoning-chain"),
      trpcBrowse: await captureTrpcBrowse(service.url, readerKey),
    };
    if (refs.listingIds.length !== LISTINGS || refs.chainIds.length !== CHAINS)
      throw new Error(`seeded ${refs.listingIds.length} listings and ${refs.chainIds.length} chains`);

    const purchases = { n: 0 };
    const publishes = { n: 0 };
    const scenarios: Scenario[] = [
      { name: "health", title: "GET /health", service, workload: healthWorkload, baseline: true },
      { name: "rest-browse", title: "REST browse, read cache on", service, workload: () => restBrowseWorkload(refs), baseline: true, steady: true },
      { name: "rest-browse-nocache", title: "REST browse, read cache off", service: uncached, workload: () => restBrowseWorkload(refs), baseline: true, steady: true },
      { name: "trpc-browse", title: "tRPC browse (typed client wire format), cache on", service, workload: () => trpcBrowseWorkload(refs), baseline: true, baselineWorkload: () => restBrowseWorkload(refs) },
      { name: "trpc-browse-nocache", title: "tRPC browse, cache off", service: uncached, workload: () => trpcBrowseWorkload(refs), baseline: true, baselineWorkload: () => restBrowseWorkload(refs) },
      { name: "publish", title: "REST publish (2.6 kB payload)", service, workload: () => publishWorkload(refs, publishes), baseline: true, writes: true, steady: true },
      { name: "purchase", title: "REST purchase", service, workload: () => purchaseWorkload(refs, purchases), baseline: true, writes: true, steady: true },
      { name: "chain-use", title: "REST reasoning-chain use", service, workload: () => chainUseWorkload(refs), baseline: true, writes: true },
      { name: "mixed", title: "mixed: 90% browse / 10% trades", service, workload: () => mixedWorkload(refs, purchases), baseline: true, writes: true },
    ];

    for (const scenario of scenarios) [scenario.service, scenario.other] = pairs.get(scenario.service) ?? [scenario.service, undefined];
    const selected = scenarios.filter((scenario) => !ONLY || ONLY.has(scenario.name));
    await warmUp(selected, baseline);

    const results: ScenarioResult[] = [];
    const databasePid = dialect === "mysql" ? localDatabaseServerPid() : undefined;
    for (const scenario of selected) {
      const baselineWorkload = scenario.baselineWorkload ?? scenario.workload;
      const sides: [[ChildServer, Workload], ...[ChildServer, Workload][]] = [
        [scenario.service, scenario.workload()],
        ...(scenario.other ? [[scenario.other, scenario.workload()] as [ChildServer, Workload]] : []),
        ...(scenario.baseline ? [[baseline, baselineWorkload()] as [ChildServer, Workload]] : []),
      ];
      await checkWorkload(scenario.name, sides);
      log(`${dialect}: ${scenario.name}`);
      const halfLoad = async (server: ChildServer, maximum: LoadResult, workload: Workload) => {
        if (!scenario.steady || SKIP.has("steady")) return undefined;
        const rate = Math.max(1, Math.round(maximum.rps / 2));
        log(`${dialect}: ${scenario.name} on ${server.name} at ${rate} req/s (half its maximum)`);
        return measured(server, (onMeasureStart) =>
          steadyRate(server.url, workload, { rate, durationS: DURATION_S, connections: CONNECTIONS, warmupS: WARMUP_S, onMeasureStart }),
          databasePid,
        );
      };
      const [ours, ...rest] = await measuredMaxThroughputs(sides, databasePid);
      const other = scenario.other ? rest.shift() : undefined;
      const bare = rest[0];
      // The server whose slice came last runs its half-load first, right after its own maximum (after the
      // other server's, MariaDB was still busy: 47–68 ms against 16–17 ms for the same run).
      const bareHalfLoad = async () => (bare ? halfLoad(baseline, bare, baselineWorkload()) : undefined);
      const baselineLast = sliceOrder(sides, SLICES - 1).at(-1)?.[0] === baseline;
      let bareHalf = baselineLast ? await bareHalfLoad() : undefined;
      const oursHalf = await halfLoad(scenario.service, ours, scenario.workload());
      if (!baselineLast) bareHalf = await bareHalfLoad();
      const result: ScenarioResult = {
        name: scenario.name,
        title: scenario.title,
        service: ours,
        baseline: bare,
        ratio: bare ? ours.rps / bare.rps : undefined,
        ...(other ? { other, otherRatio: other.rps / ours.rps } : {}),
        ...(oursHalf ? { halfLoad: oursHalf } : {}),
        ...(bareHalf ? { baselineHalfLoad: bareHalf } : {}),
      };
      const failed = [ours, result.halfLoad].some((run) => Object.keys(run?.statusCodes ?? {}).some((code) => Number(code) >= 500));
      if (failed) log(`${dialect}: ${scenario.name} got 5xx answers; the service's last log lines:\n${scenario.service.output().slice(-3000)}`);
      results.push(result);
    }
    return { dialect, ...idle, scenarios: results, seconds: (Date.now() - started) / 1000 };
  } finally {
    for (const server of servers.reverse()) await server.stop().catch(() => undefined);
    await database.drop().catch(() => undefined);
  }
}

async function benchIdleConnections(dialect: Dialect) {
  const limit = openFilesLimit();
  const count = Math.min(Number(env.BENCH_IDLE_CONNECTIONS ?? 15_000), limit - 1_000);
  log(`idle connections: ${count} (open-files limit ${limit})`);
  const database = await prepareDatabase(dialect);
  try {
    await runNode([CLI, "migrate"], { DATABASE_URL: database.url, MEMORY_EXCHANGE_LOG_LEVEL: "warn" });
    const service = await startService(dialect, database.url, {}, "idle");
    let ours;
    try {
      await sleep(1000);
      ours = { idleRssMb: mb(service.rss()), ...(await holdIdleConnections(service, count)) };
    } finally {
      await service.stop();
    }
    const baseline = await startBaseline(dialect, database.url);
    try {
      return { openFilesLimit: limit, service: ours, baseline: await holdIdleConnections(baseline, count) };
    } finally {
      await baseline.stop();
    }
  } finally {
    await database.drop();
  }
}

async function optionalBench(file: string, exportName: string): Promise<{ result?: unknown; markdown?: string; error?: string } | undefined> {
  const path = resolve(ROOT, "bench", file);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_MODULE_NOT_FOUND" && String((error as Error).message).includes(file)) return undefined;
    return { error: (error as Error).message };
  }
  const run = module[exportName];
  if (typeof run !== "function") return { error: `${file} has no ${exportName}()` };
  try {
    const result = (await (run as () => Promise<{ markdown?: string }>)()) ?? {};
    return { result, markdown: result.markdown };
  } catch (error) {
    return { error: (error as Error).stack ?? String(error) };
  }
}

async function main() {
  const started = Date.now();
  const dialects: Dialect[] = (env.BENCH_DIALECTS ?? "sqlite,mysql").split(",").filter((d): d is Dialect => d === "sqlite" || d === "mysql");
  const report: BenchReport = {
    date: new Date().toISOString(),
    machine: {
      cpu: cpus()[0]?.model ?? "unknown",
      cores: cpus().length,
      memoryGb: Math.round(totalmem() / 1024 ** 3),
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    },
    settings: {
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      connections: CONNECTIONS,
      listings: LISTINGS,
      chains: CHAINS,
      slices: SLICES,
      ...(OTHER_CLI ? { otherBuild: OTHER_CLI + (env.BENCH_AB_NODE_OPTIONS ? ` with NODE_OPTIONS=${env.BENCH_AB_NODE_OPTIONS}` : "") } : {}),
    },
    dialects: [],
  };
  for (const dialect of dialects) {
    if (dialect === "mysql" && !(await mysqlReachable())) {
      log("MariaDB/MySQL unreachable (MX_BENCH_MYSQL_URL): skipping the mysql dialect");
      report.skipped = [...(report.skipped ?? []), "mysql: server unreachable"];
      continue;
    }
    report.dialects.push(await benchDialect(dialect));
  }
  if (!SKIP.has("idle") && !ONLY) report.idleConnections = await benchIdleConnections(dialects[0] ?? "sqlite");
  if (!SKIP.has("kernel") && !ONLY) {
    log("alignment kernel");
    report.kernel = await optionalBench("kernel.ts", "runKernelBench");
  }
  if (!SKIP.has("alignment") && !ONLY) {
    log("alignment under load");
    report.alignment = await optionalBench("alignment.ts", "runAlignmentLoadBench");
  }
  if (!SKIP.has("payloads") && !ONLY) {
    log("payload transfer");
    report.payloads = await optionalBench("payloads.ts", "runPayloadBench");
  }
  report.totalSeconds = (Date.now() - started) / 1000;

  const markdown = renderReport(report);
  const out = resolve(ROOT, "bench/results/latest.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ ...report, markdown }, null, 2)}\n`);
  process.stdout.write(`${markdown}\n`);
  log(`results: ${out} (${Math.round(report.totalSeconds)} s)`);
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench] failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
