import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Database } from "../db/open-database.js";
import { appRouter } from "../trpc/root.js";

/**
 * Prometheus metrics (prom-client). Two registries:
 * - process-wide: default process metrics, trades, volume and payload bytes,
 *   which domain code records through `recordTrade` / `recordPayloadBytes`;
 * - per server: HTTP request duration/count and the database pool gauges,
 *   so several servers in one process (tests) never share a pool reading.
 * `GET /metrics` serves both, on the main port or on MEMORY_EXCHANGE_METRICS_PORT.
 */

const processRegistry = new Registry();

const trades = new Counter({
  name: "memory_exchange_trades_total",
  help: "Trades recorded: memory purchases (first purchase only) and reasoning-chain uses",
  labelNames: ["kind"] as const,
  registers: [processRegistry],
});
const volume = new Counter({
  name: "memory_exchange_trade_volume_cents_total",
  help: "Money moved by trades, in integer cents (exact)",
  labelNames: ["kind"] as const,
  registers: [processRegistry],
});
const payloadBytes = new Counter({
  name: "memory_exchange_payload_bytes_total",
  help: "KV-cache payload bytes stored (in: publish/upload) and delivered (out: purchase/use/get/download)",
  labelNames: ["direction"] as const,
  registers: [processRegistry],
});

export type TradeKind = "memory_purchase" | "chain_use";
export type PayloadDirection = "in" | "out";

// Every series exists from the first scrape, so rate() and absent() behave.
for (const kind of ["memory_purchase", "chain_use"] satisfies TradeKind[]) {
  trades.inc({ kind }, 0);
  volume.inc({ kind }, 0);
}
for (const direction of ["in", "out"] satisfies PayloadDirection[]) payloadBytes.inc({ direction }, 0);

/** Call once per committed trade (not for a repeat purchase that charged nothing). */
export function recordTrade(kind: TradeKind, cents: number): void {
  trades.inc({ kind });
  if (cents > 0) volume.inc({ kind }, cents);
}

export function recordPayloadBytes(direction: PayloadDirection, bytes: number): void {
  if (bytes > 0) payloadBytes.inc({ direction }, bytes);
}

let defaultMetricsStarted = false;

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const TRPC_ROUTE = "/trpc/:path";
// Lazy: domain code imports this module and the router imports the domain.
let procedures: Set<string> | undefined;
const isProcedure = (path: string) => (procedures ??= new Set(Object.keys(appRouter._def.procedures))).has(path);

/**
 * The route pattern, never the raw URL, so label cardinality stays bounded.
 * tRPC procedures get their own label when the name is a known procedure.
 */
function routeLabel(request: FastifyRequest): string {
  const route = request.routeOptions.url;
  if (!route) return "unmatched";
  if (route !== TRPC_ROUTE) return route;
  const path = (request.params as { path?: unknown } | undefined)?.path;
  if (typeof path !== "string") return route;
  if (isProcedure(path)) return `/trpc/${path}`;
  const batch = path.split(",");
  return batch.length > 1 && batch.every(isProcedure) ? "/trpc/(batch)" : route;
}

interface PoolReading {
  inUse: number;
  idle: number;
  waiting: number;
  max: number;
}

/** mysql2 exposes no pool statistics API: read its internal queues, guarded in case they change shape. */
function readPool(database: Database): PoolReading | undefined {
  if (database.dialect === "sqlite") return { inUse: 0, idle: 1, waiting: 0, max: 1 };
  const inner = database.pool.pool as unknown as {
    _allConnections?: { length?: unknown };
    _freeConnections?: { length?: unknown };
    _connectionQueue?: { length?: unknown };
    config?: { connectionLimit?: unknown };
  };
  const count = (queue: { length?: unknown } | undefined) => (typeof queue?.length === "number" ? queue.length : undefined);
  const all = count(inner._allConnections);
  const free = count(inner._freeConnections);
  const waiting = count(inner._connectionQueue);
  const max = inner.config?.connectionLimit;
  if (all === undefined || free === undefined || waiting === undefined) return undefined;
  return { inUse: Math.max(0, all - free), idle: free, waiting, max: typeof max === "number" ? max : all };
}

export interface MetricsOptions {
  database: Database;
  /** When set, /metrics (with /ready and /health) is served on this port instead of the main one. */
  port: number | undefined;
  host: string;
}

export interface ServerMetrics {
  /** The Prometheus text of every metric. */
  render(): Promise<string>;
  readonly contentType: string;
  /** The separate metrics listener's address, once listening. */
  address(): string | undefined;
}

/**
 * Adds the HTTP hooks and `GET /metrics` to the server. Call before routes
 * are declared. With a separate port, the listener opens when the app is
 * ready and closes with it.
 */
export function installMetrics(app: FastifyInstance, options: MetricsOptions): ServerMetrics {
  if (!defaultMetricsStarted) {
    collectDefaultMetrics({ register: processRegistry });
    defaultMetricsStarted = true;
  }
  const registry = new Registry();
  const labelNames = ["method", "route", "status_code"] as const;
  const duration = new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request duration by route pattern and status",
    labelNames,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  // The histogram's _count by definition: copied from it at scrape time rather than counted per request.
  new Counter({
    name: "http_requests_total",
    help: "HTTP requests by route pattern and status",
    labelNames,
    registers: [registry],
    async collect() {
      this.reset();
      for (const { metricName, labels, value } of (await duration.get()).values)
        if (metricName === "http_request_duration_seconds_count") this.inc(labels, value);
    },
  });
  const poolGauge = (name: string, help: string, pick: (r: PoolReading) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const reading = readPool(options.database);
        if (reading) this.set(pick(reading));
      },
    });
  poolGauge("memory_exchange_db_pool_in_use", "Database connections checked out by a request", (r) => r.inUse);
  poolGauge("memory_exchange_db_pool_idle", "Open database connections waiting in the pool", (r) => r.idle);
  poolGauge("memory_exchange_db_pool_waiting", "Requests queued for a database connection", (r) => r.waiting);
  poolGauge("memory_exchange_db_pool_max", "Configured database pool size", (r) => r.max);

  // Callback style: it runs on every request, and an async hook costs a promise and a tick each.
  app.addHook("onResponse", (request, reply, done) => {
    const labels = { method: request.method, route: routeLabel(request), status_code: reply.statusCode };
    duration.observe(labels, reply.elapsedTime / 1000);
    done();
  });

  const render = () => Registry.merge([processRegistry, registry]).metrics();
  const contentType = processRegistry.contentType;

  if (options.port === undefined) {
    app.get("/metrics", async (_request, reply) => reply.type(contentType).send(await render()));
    return { render, contentType, address: () => undefined };
  }

  let listener: Server | undefined;
  let bound: string | undefined;
  app.addHook("onReady", async () => {
    listener = createServer((req, res) => void serveOpsRequest(app, req, res, render, contentType));
    await new Promise<void>((resolve, reject) => {
      listener!.once("error", reject);
      listener!.listen(options.port, options.host, () => resolve());
    });
    const address = listener.address() as AddressInfo;
    bound = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
    app.log.info({ address: bound }, "metrics listening");
  });
  app.addHook("onClose", async () => {
    if (!listener) return;
    const closing = new Promise<void>((resolve) => listener!.close(() => resolve()));
    listener.closeAllConnections();
    await closing;
  });
  return { render, contentType, address: () => bound };
}

/** The separate ops port: /metrics, and /ready and /health answered by the main app itself. */
async function serveOpsRequest(
  app: FastifyInstance,
  req: IncomingMessage,
  res: ServerResponse,
  render: () => Promise<string>,
  contentType: string,
) {
  try {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
    } else if (path === "/metrics") {
      res.writeHead(200, { "content-type": contentType }).end(req.method === "HEAD" ? undefined : await render());
    } else if (path === "/ready" || path === "/health") {
      const answer = await app.inject({ method: "GET", url: path });
      res.writeHead(answer.statusCode, { "content-type": String(answer.headers["content-type"] ?? "application/json") });
      res.end(req.method === "HEAD" ? undefined : answer.body);
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  } catch (error) {
    app.log.error({ err: error }, "metrics request failed");
    if (!res.headersSent) res.writeHead(500);
    res.end();
  }
}
