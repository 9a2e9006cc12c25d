/**
 * Payload transfer benchmark: throughput of a real-size safetensors upload
 * (`PUT /api/v1/payloads`, streamed into the chunk store) and download
 * (`GET /api/v1/memory/:id/payload`) through the service's built binary, next
 * to a baseline in the same run: the same bytes written to (and read from)
 * the same database directly with the driver, in the same 1 MiB rows. The
 * ratio service / baseline says what the HTTP layer, hashing, NaN checks and
 * safetensors handling cost on top of the database itself. The service's RSS
 * is sampled throughout: its growth over the idle level is reported too.
 *
 *   node --conditions=source --import tsx bench/payloads.ts   (after `pnpm build`)
 *
 * Settings: BENCH_DIALECTS (sqlite,mysql), BENCH_PAYLOAD_MB (256),
 * BENCH_PAYLOAD_RUNS (2: the best run is reported), MX_BENCH_MYSQL_URL.
 */
import { createHash, randomFillSync } from "node:crypto";
import { Agent, request as httpRequest } from "node:http";
import { Readable } from "node:stream";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createMemoryExchangeClient } from "@memory-exchange/client";
import { createApiKey, createStore, openDatabase, parseDatabaseUrl, type Database } from "@memory-exchange/server";
import { kvCacheSafetensorsLayout } from "@memory-exchange/shared";
import { MYSQL_URL, mysqlReachable, prepareDatabase, type BenchDatabase, type Dialect } from "./market.js";
import { freePort, startServer, type ChildServer } from "./processes.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = resolve(ROOT, "packages/server/dist/cli.js");
const MiB = 1024 * 1024;
const CHUNK = MiB;
const MB = 1e6;

const log = (message: string) => process.stderr.write(`[bench:payloads] ${message}\n`);

export interface PayloadRun {
  uploadMBps: number;
  downloadMBps: number;
  driverWriteMBps: number;
  driverReadMBps: number;
  /** service RSS growth over its level before the run, in MiB (peak while uploading or downloading) */
  rssGrowthMiB: number;
}

export interface PayloadDialectResult {
  dialect: Dialect;
  bytes: number;
  runs: PayloadRun[];
  best: PayloadRun & { uploadRatio: number; downloadRatio: number };
  serverRssIdleMiB: number;
}

export interface PayloadBenchResult {
  sizeMiB: number;
  dialects: PayloadDialectResult[];
  skipped: string[];
  markdown: string;
}

/** One random, finite float16 block reused for every MiB of data: generating data must not be what is measured. */
function finiteBlock(): Uint8Array {
  const block = new Uint8Array(CHUNK);
  randomFillSync(block);
  const halves = new Uint16Array(block.buffer);
  for (let i = 0; i < halves.length; i++) halves[i]! &= 0xbfff; // top exponent bit clear: never Inf/NaN
  return block;
}

/** A KV-cache file of ~`bytes` as a Node stream (the run number in its metadata makes every digest new). */
function kvCacheFile(bytes: number, run: string, block: Uint8Array) {
  const tokens = Math.max(1, Math.round(bytes / (2 * 32 * 8 * 128 * 2)));
  const shape = [32, 8, tokens, 128];
  const layout = kvCacheSafetensorsLayout({ sourceModel: "llama-3-8b", keys: { dtype: "float16", shape }, values: { dtype: "float16", shape }, metadata: { run } });
  const hash = createHash("sha256");
  async function* pieces() {
    hash.update(layout.header);
    yield layout.header;
    for (let remaining = layout.size - layout.header.length; remaining > 0; ) {
      const piece = block.subarray(0, Math.min(CHUNK, remaining));
      remaining -= piece.length;
      hash.update(piece);
      yield piece;
    }
  }
  return { size: layout.size, stream: () => Readable.from(pieces(), { objectMode: false }), digest: () => hash.digest("hex") };
}

/**
 * A lean HTTP client (node:http, no web streams), so the figures are the
 * service's and not the client library's; the SDK's upload and download are
 * exercised by the tests.
 */
function httpUpload(base: string, apiKey: string, body: Readable, size: number): Promise<{ digest: string }> {
  return new Promise((resolvePromise, reject) => {
    const request = httpRequest(`${base}/api/v1/payloads`, {
      method: "PUT",
      agent,
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/octet-stream", "content-length": String(size) },
    });
    request.on("error", reject);
    request.on("response", (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (d: string) => (text += d));
      response.on("end", () => {
        const parsed = JSON.parse(text) as { data?: { digest: string }; error?: string };
        if (!parsed.data) reject(new Error(`upload failed (${response.statusCode}): ${parsed.error}`));
        else resolvePromise(parsed.data);
      });
    });
    body.pipe(request);
  });
}

function httpDownload(url: string, apiKey: string): Promise<{ bytes: number; digest: string }> {
  return new Promise((resolvePromise, reject) => {
    const request = httpRequest(url, { agent, headers: { authorization: `Bearer ${apiKey}` } });
    request.on("error", reject);
    request.on("response", (response) => {
      if (response.statusCode !== 200) return reject(new Error(`download failed (${response.statusCode})`));
      const hash = createHash("sha256");
      let bytes = 0;
      response.on("data", (piece: Buffer) => {
        hash.update(piece);
        bytes += piece.length;
      });
      response.on("end", () => resolvePromise({ bytes, digest: hash.digest("hex") }));
      response.on("error", reject);
    });
    request.end();
  });
}

const agent = new Agent({ keepAlive: true });

function rssSampler(server: ChildServer) {
  let peak = server.rss();
  const timer = setInterval(() => (peak = Math.max(peak, server.rss())), 25);
  return { peak: () => Math.max(peak, server.rss()), stop: () => clearInterval(timer) };
}

/**
 * The baseline: the same bytes as 1 MiB rows into a table of the same shape,
 * straight through the driver (mysql2 `execute`, better-sqlite3 prepared
 * statements), then read back four rows per query, as the service reads.
 */
async function driverBaseline(database: Database, bytes: number, block: Uint8Array): Promise<{ writeMBps: number; readMBps: number }> {
  const chunks = Math.ceil(bytes / CHUNK);
  const key = `baseline-${Date.now()}`;
  const data = Buffer.from(block);
  let started: number;
  let written: number;
  let read = 0;
  if (database.dialect === "mysql") {
    const { pool } = database;
    await pool.query("CREATE TABLE IF NOT EXISTS bench_payload_chunks (digest CHAR(64) NOT NULL, seq INT NOT NULL, data MEDIUMBLOB NOT NULL, PRIMARY KEY (digest, seq))");
    started = performance.now();
    for (let seq = 0; seq < chunks; seq++) await pool.execute("INSERT INTO bench_payload_chunks (digest, seq, data) VALUES (?, ?, ?)", [key, seq, data]);
    written = (performance.now() - started) / 1000;
    started = performance.now();
    for (let seq = 0; seq < chunks; seq += 4) {
      const [rows] = await pool.query("SELECT data FROM bench_payload_chunks WHERE digest = ? AND seq BETWEEN ? AND ? ORDER BY seq", [key, seq, seq + 3]);
      for (const row of rows as { data: Buffer }[]) read += row.data.length;
    }
    await pool.query("DROP TABLE bench_payload_chunks");
  } else {
    const { sqlite } = database;
    sqlite.exec("CREATE TABLE IF NOT EXISTS bench_payload_chunks (digest TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (digest, seq))");
    const insert = sqlite.prepare("INSERT INTO bench_payload_chunks (digest, seq, data) VALUES (?, ?, ?)");
    const select = sqlite.prepare("SELECT data FROM bench_payload_chunks WHERE digest = ? AND seq BETWEEN ? AND ? ORDER BY seq");
    started = performance.now();
    for (let seq = 0; seq < chunks; seq++) insert.run(key, seq, data);
    written = (performance.now() - started) / 1000;
    started = performance.now();
    for (let seq = 0; seq < chunks; seq += 4) for (const row of select.all(key, seq, seq + 3) as { data: Buffer }[]) read += row.data.length;
    sqlite.exec("DROP TABLE bench_payload_chunks");
  }
  const readSeconds = (performance.now() - started) / 1000;
  return { writeMBps: (chunks * CHUNK) / MB / written, readMBps: read / MB / readSeconds };
}

/** Its own MySQL database (the HTTP benchmark's `mx_bench` may be in use by another run); SQLite: a fresh file. */
async function payloadDatabase(dialect: Dialect): Promise<BenchDatabase> {
  if (dialect === "sqlite") return prepareDatabase(dialect);
  const url = new URL(MYSQL_URL);
  const name = `${url.pathname.slice(1) || "mx_bench"}_payloads`;
  const onServer = async (statement: string) => {
    const admin = new URL(MYSQL_URL);
    admin.pathname = "/mysql";
    const database = await openDatabase(parseDatabaseUrl(admin.toString(), 1));
    try {
      if (database.dialect === "mysql") await database.pool.query(statement);
    } finally {
      await database.close();
    }
  };
  await onServer(`DROP DATABASE IF EXISTS \`${name}\``);
  await onServer(`CREATE DATABASE \`${name}\``);
  url.pathname = `/${name}`;
  return { dialect, url: url.toString(), drop: () => onServer(`DROP DATABASE IF EXISTS \`${name}\``) };
}

async function benchDialect(dialect: Dialect, bytes: number, runs: number, block: Uint8Array): Promise<PayloadDialectResult> {
  const db = await payloadDatabase(dialect);
  const port = await freePort();
  let server: ChildServer | undefined;
  let direct: Database | undefined;
  try {
    server = await startServer({
      name: `payloads-${dialect}`,
      args: [CLI, "serve"],
      env: { DATABASE_URL: db.url, MEMORY_EXCHANGE_PORT: String(port), MEMORY_EXCHANGE_HOST: "127.0.0.1", MEMORY_EXCHANGE_LOG_LEVEL: "warn", MEMORY_EXCHANGE_METRICS_PORT: "" },
      port,
      readyPath: "/ready",
    });
    direct = await openDatabase(parseDatabaseUrl(db.url, 2));
    const apiKey = (await createApiKey(createStore(direct), { userId: 1, name: "bench-payloads", scopes: ["read", "trade"] })).key;
    const client = createMemoryExchangeClient({ url: server.url, apiKey });
    const idle = server.rss();
    const results: PayloadRun[] = [];
    for (let run = 0; run < runs; run++) {
      const before = server.rss();
      const rss = rssSampler(server);
      const file = kvCacheFile(bytes, `${dialect}-${run}-${Date.now()}`, block);
      let started = performance.now();
      const uploaded = await httpUpload(server.url, apiKey, file.stream(), file.size);
      const uploadSeconds = (performance.now() - started) / 1000;
      if (uploaded.digest !== file.digest()) throw new Error("upload digest mismatch");
      const { memoryId } = await client.memory.publish.mutate({ memoryType: "kv_cache", kvCacheRef: uploaded.digest, price: 1 });

      started = performance.now();
      const downloaded = await httpDownload(`${server.url}/api/v1/memory/${memoryId}/payload`, apiKey);
      const downloadSeconds = (performance.now() - started) / 1000;
      rss.stop();
      if (downloaded.bytes !== file.size || downloaded.digest !== uploaded.digest) throw new Error("download differs from the upload");

      const baseline = await driverBaseline(direct, file.size, block);
      const result: PayloadRun = {
        uploadMBps: file.size / MB / uploadSeconds,
        downloadMBps: file.size / MB / downloadSeconds,
        driverWriteMBps: baseline.writeMBps,
        driverReadMBps: baseline.readMBps,
        rssGrowthMiB: (rss.peak() - before) / MiB,
      };
      log(
        `${dialect} run ${run + 1}: upload ${result.uploadMBps.toFixed(0)} MB/s (driver ${result.driverWriteMBps.toFixed(0)}), ` +
          `download ${result.downloadMBps.toFixed(0)} MB/s (driver ${result.driverReadMBps.toFixed(0)}), RSS +${result.rssGrowthMiB.toFixed(1)} MiB`,
      );
      results.push(result);
    }
    const pick = (f: (r: PayloadRun) => number) => Math.max(...results.map(f));
    const best = {
      uploadMBps: pick((r) => r.uploadMBps),
      downloadMBps: pick((r) => r.downloadMBps),
      driverWriteMBps: pick((r) => r.driverWriteMBps),
      driverReadMBps: pick((r) => r.driverReadMBps),
      rssGrowthMiB: pick((r) => r.rssGrowthMiB),
    };
    return {
      dialect,
      bytes,
      runs: results,
      best: { ...best, uploadRatio: best.uploadMBps / best.driverWriteMBps, downloadRatio: best.downloadMBps / best.driverReadMBps },
      serverRssIdleMiB: idle / MiB,
    };
  } finally {
    await direct?.close();
    await server?.stop();
    await db.drop();
  }
}

function render(result: Omit<PayloadBenchResult, "markdown">): string {
  const lines = [
    `A ${result.sizeMiB} MiB safetensors KV cache (float16, 32 × 8 × tokens × 128 per tensor) streamed up (\`PUT /api/v1/payloads\`) and back down ` +
      "(`GET /api/v1/memory/:id/payload`, SHA-256 checked) over keep-alive HTTP with node:http, against writing and reading the same bytes as 1 MiB rows " +
      "with the driver directly, same database, same run. Best of the runs per column; MB = 10^6 bytes. RSS growth: the service's peak over its level " +
      "before the run (the first, cold run included).",
    "",
    "| dialect | upload MB/s | driver write MB/s | upload / driver | download MB/s | driver read MB/s | download / driver | service RSS growth (peak) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const d of result.dialects) {
    const b = d.best;
    lines.push(
      `| ${d.dialect} | ${b.uploadMBps.toFixed(0)} | ${b.driverWriteMBps.toFixed(0)} | ${b.uploadRatio.toFixed(2)} | ${b.downloadMBps.toFixed(0)} | ` +
        `${b.driverReadMBps.toFixed(0)} | ${b.downloadRatio.toFixed(2)} | ${b.rssGrowthMiB.toFixed(1)} MiB (idle ${d.serverRssIdleMiB.toFixed(0)} MiB) |`,
    );
  }
  if (result.skipped.length) lines.push("", `Skipped: ${result.skipped.join("; ")}.`);
  return lines.join("\n");
}

export async function runPayloadBench(): Promise<PayloadBenchResult> {
  const env = process.env;
  const dialects = (env.BENCH_DIALECTS ?? "sqlite,mysql").split(",").filter((d): d is Dialect => d === "sqlite" || d === "mysql");
  const sizeMiB = Number(env.BENCH_PAYLOAD_MB ?? 256);
  const runs = Math.max(1, Number(env.BENCH_PAYLOAD_RUNS ?? 2));
  const block = finiteBlock();
  const result: Omit<PayloadBenchResult, "markdown"> = { sizeMiB, dialects: [], skipped: [] };
  for (const dialect of dialects) {
    if (dialect === "mysql" && !(await mysqlReachable())) {
      result.skipped.push("mysql: server unreachable");
      continue;
    }
    log(`${dialect}: ${sizeMiB} MiB × ${runs}`);
    result.dialects.push(await benchDialect(dialect, sizeMiB * MiB, runs, block));
  }
  return { ...result, markdown: render(result) };
}

// Run directly: print the Markdown.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  runPayloadBench()
    .then((r) => process.stdout.write(`${r.markdown}\n`))
    .catch((error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    });
}
