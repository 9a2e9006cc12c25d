import { afterEach, describe, expect, test } from "vitest";
import { alignmentMetrics, matmulF32, matmulF64 } from "@memory-exchange/shared";
import { AlignmentPoolError, createAlignmentPool, type AlignmentPool } from "../src/alignment/worker-pool.js";

function random(length: number, seed: number, Type: typeof Float64Array | typeof Float32Array = Float64Array) {
  const array = new Type(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    array[i] = s / 2 ** 32 - 0.5;
  }
  return array;
}

const pools: AlignmentPool[] = [];
function pool(size: number, maxQueue: number): AlignmentPool {
  const p = createAlignmentPool({ size, maxQueue });
  pools.push(p);
  return p;
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

/** A job heavy enough (~tens of ms) to still be running when the next call is made. */
function heavyJob(seed: number) {
  const [rows, k, n] = [256, 256, 256];
  return { dtype: "float64" as const, x: random(rows * k, seed), rows, k, w: random(k * n, seed + 1), n };
}

describe("alignment worker pool", () => {
  test("float64 job: same bits as the kernel in-process, metrics computed from the data", async () => {
    const [rows, k, n] = [37, 129, 65];
    const x = random(rows * k, 1) as Float64Array;
    const w = random(k * n, 2) as Float64Array;
    const expected = matmulF64(x, rows, k, w, n);
    const expectedMetrics = alignmentMetrics(x, expected, rows, k, n);
    const result = await pool(1, 4).run({ dtype: "float64", x: x.slice(), rows, k, w: w.slice(), n });
    expect(result.out).toBeInstanceOf(Float64Array);
    expect(Array.from(result.out)).toEqual(Array.from(expected));
    expect(result.metrics).toEqual(expectedMetrics);
    expect(result.computeMs).toBeGreaterThanOrEqual(0);
  });

  test("float32 job from raw little-endian bytes", async () => {
    const [rows, k, n] = [10, 12, 5];
    const x = random(rows * k, 3, Float32Array) as Float32Array;
    const w = random(k * n, 4, Float32Array) as Float32Array;
    const expected = matmulF32(x, rows, k, w, n);
    const result = await pool(1, 4).run({ dtype: "float32", x: x.slice().buffer, rows, k, w: w.slice().buffer, n });
    expect(result.out).toBeInstanceOf(Float32Array);
    expect(Array.from(result.out)).toEqual(Array.from(expected));
  });

  test("inputs are transferred by default, kept with transfer: false, and views into larger buffers are copied", async () => {
    const p = pool(1, 4);
    const x = random(6, 5) as Float64Array;
    const w = random(6, 6) as Float64Array;
    await p.run({ dtype: "float64", x, rows: 2, k: 3, w, n: 2 });
    expect(x.byteLength).toBe(0); // detached: moved to the worker, not copied
    expect(w.byteLength).toBe(0);

    const kept = random(6, 7) as Float64Array;
    await p.run({ dtype: "float64", x: kept, rows: 2, k: 3, w: random(6, 8), n: 2, transfer: false });
    expect(kept.byteLength).toBe(48);

    const host = random(20, 9) as Float64Array;
    const view = host.subarray(2, 8);
    const result = await p.run({ dtype: "float64", x: view, rows: 2, k: 3, w: Float64Array.from([1, 0, 0, 1, 0, 0]), n: 2 });
    expect(host.byteLength).toBe(160); // the shared host buffer was not detached
    expect(Array.from(result.out)).toEqual([host[2], host[3], host[5], host[6]]);
  });

  test("runs jobs concurrently on separate workers", async () => {
    const p = pool(2, 4);
    const jobs = [p.run(heavyJob(10)), p.run(heavyJob(20))];
    expect(p.stats()).toEqual({ workers: 2, busy: 2, queued: 0 });
    const results = await Promise.all(jobs);
    for (const r of results) expect(r.out.length).toBe(256 * 256);
    expect(p.stats()).toEqual({ workers: 2, busy: 0, queued: 0 });
  });

  test("rejects with code BUSY when the queue is full, and still completes the accepted jobs", async () => {
    const p = pool(1, 1);
    const running = p.run(heavyJob(30));
    const queued = p.run(heavyJob(40));
    expect(p.stats()).toEqual({ workers: 1, busy: 1, queued: 1 });
    const rejected = p.run(heavyJob(50));
    await expect(rejected).rejects.toBeInstanceOf(AlignmentPoolError);
    await expect(rejected).rejects.toMatchObject({ code: "BUSY" });
    await expect(running).resolves.toHaveProperty("out");
    await expect(queued).resolves.toHaveProperty("out");

    const noQueue = pool(1, 0);
    const first = noQueue.run(heavyJob(60));
    await expect(noQueue.run(heavyJob(70))).rejects.toMatchObject({ code: "BUSY" });
    await first;
  });

  test("a job with bad dimensions is rejected and the same worker keeps serving", async () => {
    const p = pool(1, 4);
    const bad = p.run({ dtype: "float64", x: new Float64Array(6), rows: 2, k: 4, w: new Float64Array(8), n: 2 });
    await expect(bad).rejects.toBeInstanceOf(RangeError);
    await expect(bad).rejects.toThrow(/x has 6 elements, expected rows × k = 2 × 4 = 8/);
    const good = await p.run({ dtype: "float64", x: Float64Array.from([1, 2]), rows: 1, k: 2, w: Float64Array.from([3, 4]), n: 1 });
    expect(Array.from(good.out)).toEqual([11]);
    expect(p.stats().workers).toBe(1);
  });

  test("wrong array types and dtypes are rejected before reaching a worker", async () => {
    const p = pool(1, 4);
    await expect(
      p.run({ dtype: "float32", x: new Float64Array(4), rows: 2, k: 2, w: new Float32Array(4), n: 2 }),
    ).rejects.toThrow(/x must be a Float32Array or an ArrayBuffer/);
    await expect(p.run({ dtype: "float64", x: new ArrayBuffer(12), rows: 1, k: 1, w: new Float64Array(1), n: 1 })).rejects.toThrow(
      /not a whole number of float64 values/,
    );
    await expect(
      p.run({ dtype: "float16" as "float32", x: new Float32Array(1), rows: 1, k: 1, w: new Float32Array(1), n: 1 }),
    ).rejects.toThrow(TypeError);
    expect(p.stats().workers).toBe(0);
  });

  test("close() rejects queued and running jobs with CLOSED and terminates the workers", async () => {
    const p = createAlignmentPool({ size: 1, maxQueue: 2 });
    await p.run(heavyJob(80)); // the worker is up
    expect(p.stats().workers).toBe(1);
    // Handlers attached before close(), which rejects these synchronously.
    const running = expect(p.run(heavyJob(90))).rejects.toMatchObject({ code: "CLOSED" });
    const queued = expect(p.run(heavyJob(100))).rejects.toMatchObject({ code: "CLOSED" });
    await p.close();
    await running;
    await queued;
    expect(p.stats()).toEqual({ workers: 0, busy: 0, queued: 0 });
    await expect(p.run(heavyJob(110))).rejects.toMatchObject({ code: "CLOSED" });
  });

  test("options are validated and the default size leaves a core for the event loop", async () => {
    expect(() => createAlignmentPool({ size: 0 })).toThrow(RangeError);
    expect(() => createAlignmentPool({ maxQueue: -1 })).toThrow(RangeError);
    const p = pool(undefined as unknown as number, 4);
    const { availableParallelism } = await import("node:os");
    expect(p.size).toBe(Math.max(1, availableParallelism() - 1));
  });
});
