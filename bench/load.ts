import autocannon, { type AutocannonRequest } from "autocannon";
import { RawHttpPool, encodeRequest } from "./raw-http.js";

/** One HTTP request of a workload. */
export interface RequestSpec {
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * What a scenario sends: `next(i)` gives the i-th request (unique purchases,
 * rotating ids…). A `fixed` workload sends the same request every time, which
 * autocannon can pre-build (no per-request cost in the load generator).
 */
export interface Workload {
  next(i: number): RequestSpec;
  fixed?: boolean;
}

export interface LoadResult {
  /** completed requests per second (any status) */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  requests: number;
  /** socket errors, timeouts and non-2xx answers */
  errors: number;
  statusCodes: Record<string, number>;
  durationS: number;
}

const withBody = (spec: RequestSpec): AutocannonRequest => ({
  method: spec.method,
  path: spec.path,
  headers: { ...(spec.body !== undefined ? { "content-type": "application/json" } : {}), ...spec.headers },
  ...(spec.body !== undefined ? { body: spec.body } : {}),
});

/**
 * Closed-loop maximum throughput (autocannon): `connections` keep-alive
 * connections each sending the next request as soon as the previous answer
 * arrives. A short warm-up run first (JIT, pools, caches), not counted.
 */
export async function maxThroughput(
  url: string,
  workload: Workload,
  options: { connections: number; durationS: number; warmupS: number; onMeasureStart?: () => void },
): Promise<LoadResult> {
  let counter = 0;
  const requests: AutocannonRequest[] = workload.fixed
    ? [withBody(workload.next(0))]
    : [{ setupRequest: (request) => ({ ...request, ...withBody(workload.next(counter++)) }) }];
  const run = (duration: number) =>
    autocannon({ url, connections: options.connections, duration, timeout: 10, requests });
  if (options.warmupS > 0) await run(options.warmupS);
  options.onMeasureStart?.();
  const result = await run(options.durationS);
  const requestsDone = result.requests.total;
  return {
    rps: requestsDone / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    meanMs: result.latency.mean,
    requests: requestsDone,
    errors: result.errors + result.timeouts + result.non2xx,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
    durationS: result.duration,
  };
}

/**
 * Open-loop constant rate: requests are sent on a fixed schedule whatever the
 * answers do, and each latency is measured from the moment the request was
 * due (so a stalled server shows up in p99 instead of slowing the sender:
 * no coordinated omission). autocannon's own rate limit sends each second's
 * quota in a burst, which would measure a burst, not a steady load.
 *
 * The sender (`raw-http.ts`) writes pre-built request bytes and reads
 * answers into one buffer per connection. It shares the machine with the
 * server: undici cost it ~45 µs per request, and its socket reads allocated
 * a 64 kB buffer each, which made V8 run a full collection every ~0.5 s in
 * the sender: every such pause showed as 10–20 ms in the server's p99 (the
 * slow requests lined up with the sender's collections, not the server's).
 * `senderLagP99Ms` reports how late the sender itself was, so a number that
 * measures the generator rather than the server shows.
 *
 * The first `warmupS` of the schedule are sent but not measured: a sender
 * whose code is not yet compiled lags behind for its first ~0.7 s at
 * 7,000 req/s, and those requests' p99 (~80–190 ms) measured the generator.
 */
export async function steadyRate(
  url: string,
  workload: Workload,
  options: { rate: number; durationS: number; connections: number; warmupS?: number; onMeasureStart?: () => void },
): Promise<LoadResult & { targetRate: number; senderLagP99Ms: number }> {
  const target = new URL(url);
  const pool = new RawHttpPool(target, options.connections);
  const fixed = workload.fixed ? encodeRequest(target.host, workload.next(0)) : undefined;
  const latencies: number[] = [];
  const lags: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  let sent = 0;
  let done = 0;
  let measuredDone = 0;
  const warmup = Math.round(options.rate * (options.warmupS ?? 0));
  const total = warmup + Math.max(1, Math.round(options.rate * options.durationS));
  const start = performance.now();
  const interval = 1000 / options.rate;
  let measureStart = warmup === 0 ? start : NaN;
  if (warmup === 0) options.onMeasureStart?.();

  await new Promise<void>((resolve) => {
    const finish = () => {
      if (++done === total) resolve();
    };
    const send = (i: number) => {
      const due = start + i * interval;
      const measured = i >= warmup;
      if (i === warmup && warmup > 0) {
        measureStart = performance.now();
        options.onMeasureStart?.();
      }
      if (measured) lags.push(performance.now() - due);
      pool.request(fixed ?? encodeRequest(target.host, workload.next(i)), (status) => {
        statusCodes[status] = (statusCodes[status] ?? 0) + 1;
        if (status < 200 || status >= 300) errors++;
        else if (measured) latencies.push(performance.now() - due);
        if (measured) measuredDone++;
        finish();
      });
    };
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
      while (sent < due) send(sent++);
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  const elapsedS = (performance.now() - measureStart) / 1000;
  pool.close();
  const pct = (values: number[], p: number) => {
    values.sort((a, b) => a - b);
    return values.length ? values[Math.min(values.length - 1, Math.floor((p / 100) * values.length))]! : NaN;
  };
  return {
    targetRate: options.rate,
    rps: measuredDone / elapsedS,
    p50Ms: pct(latencies, 50),
    p99Ms: pct(latencies, 99),
    meanMs: latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1),
    requests: measuredDone,
    errors,
    statusCodes,
    durationS: elapsedS,
    senderLagP99Ms: pct(lags, 99),
  };
}
