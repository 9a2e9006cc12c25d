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

/** One server of an alternating measurement, with hooks around each of its measured slices (CPU accounting). */
export interface AlternatingSide {
  url: string;
  workload: Workload;
  onSliceStart?: () => void;
  onSliceEnd?: () => void;
}

/**
 * The order the servers run in during slice `slice`. Two take turns A B, then
 * B A, then A B… More rotate, every second round of rotations backwards (A B C,
 * B C A, C A B, C B A, A C B, B A C), so each takes each place as often: with
 * A B C, C B A…, the same build run as A and as B read 1.00–1.20× apart, B
 * (always right after another server's load) ahead.
 */
export const sliceOrder = <T>(sides: readonly T[], slice: number): T[] => {
  if (sides.length <= 2) return slice % 2 === 0 ? [...sides] : [...sides].reverse();
  const shift = slice % sides.length;
  const rotated = [...sides.slice(shift), ...sides.slice(0, shift)];
  return Math.floor(slice / sides.length) % 2 === 0 ? rotated : rotated.reverse();
};

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;

/**
 * Closed-loop maximum throughput (autocannon): `connections` keep-alive
 * connections each sending the next request as soon as the previous answer
 * arrives. Each server first gets a short warm-up run (JIT, pools, caches),
 * not counted.
 *
 * With several servers (the service and its baseline), the measured time is
 * cut into `slices` (of whole seconds) and the servers take turns, in A B B A order, so that a
 * stretch of the run where the machine is slower (another VM, the database
 * catching up, CPU frequency) weighs on both alike: measured one after the
 * other for 5 s each, the baseline's own CPU per request for the same
 * uncached browse read 191 µs in one scenario and 361 µs in the next of the
 * same run. Requests, time and latencies add up over a server's slices.
 */
export async function alternatingMaxThroughput(
  sides: AlternatingSide[],
  options: { connections: number; durationS: number; warmupS: number; slices?: number },
): Promise<LoadResult[]> {
  const state = sides.map((side) => {
    let counter = 0;
    const requests: AutocannonRequest[] = side.workload.fixed
      ? [withBody(side.workload.next(0))]
      : [{ setupRequest: (request) => ({ ...request, ...withBody(side.workload.next(counter++)) }) }];
    return { side, requests, done: 0, durationS: 0, errors: 0, latencies: [] as number[], statusCodes: {} as Record<string, number> };
  });
  const run = async (s: (typeof state)[number], durationS: number, measure: boolean) => {
    const instance = autocannon({ url: s.side.url, connections: options.connections, duration: durationS, timeout: 10, requests: s.requests });
    if (measure) instance.on("response", (_client, _status, _bytes, responseTime) => s.latencies.push(responseTime));
    const result = await instance;
    if (!measure) return;
    s.done += result.requests.total;
    s.durationS += result.duration;
    s.errors += result.errors + result.timeouts + result.non2xx;
    for (const [code, stats] of Object.entries(result.statusCodeStats)) s.statusCodes[code] = (s.statusCodes[code] ?? 0) + stats.count;
  };

  if (options.warmupS > 0) for (const s of state) await run(s, options.warmupS, false);
  const slices = sides.length > 1 ? Math.max(1, options.slices ?? 1) : 1;
  // autocannon stops on a whole second: a slice lasts whole seconds
  const sliceS = Math.max(1, Math.round(options.durationS / slices));
  for (let slice = 0; slice < slices; slice++)
    for (const s of sliceOrder(state, slice)) {
      s.side.onSliceStart?.();
      await run(s, sliceS, true);
      s.side.onSliceEnd?.();
    }

  return state.map((s) => {
    s.latencies.sort((a, b) => a - b);
    return {
      rps: s.done / s.durationS,
      p50Ms: percentile(s.latencies, 50),
      p99Ms: percentile(s.latencies, 99),
      meanMs: s.latencies.reduce((a, b) => a + b, 0) / (s.latencies.length || 1),
      requests: s.done,
      errors: s.errors,
      statusCodes: s.statusCodes,
      durationS: s.durationS,
    };
  });
}

/** The maximum throughput of one server (see `alternatingMaxThroughput`). */
export async function maxThroughput(url: string, workload: Workload, options: { connections: number; durationS: number; warmupS: number }): Promise<LoadResult> {
  const [result] = await alternatingMaxThroughput([{ url, workload }], options);
  return result!;
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
  const pct = (values: number[], p: number) => percentile(values.sort((a, b) => a - b), p);
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
