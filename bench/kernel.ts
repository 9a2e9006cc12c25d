/**
 * Alignment kernel benchmark: GFLOP/s of matmulF32 / matmulF64 for x (4096 ×
 * 1024) · W (1024 × 1024), next to numpy's `x @ w` on the same shapes in the
 * same run.
 *
 * numpy runs in a `python3 -c` subprocess, three ways: with the environment as
 * it is, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (either can pin
 * OpenBLAS to a slower code path on this kind of machine), and unset plus
 * OPENBLAS_NUM_THREADS=1 — our kernel is single-threaded, so the last row is
 * the per-core comparison.
 *
 *   node --import tsx bench/kernel.ts     (from the repository root)
 *
 * "ours" is the public matmulF32/matmulF64 (WebAssembly SIMD where available);
 * the plain-JS fallback is measured too. Bounded in time: each of our kernels
 * gets a time budget, with at least one run.
 */
import { execFile } from "node:child_process";
import { realpathSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { alignmentFlops, alignmentKernelBackend, matmulF32, matmulF64 } from "../packages/shared/src/alignment/index.js";
import { matmulF32Js, matmulF64Js } from "../packages/shared/src/alignment/kernel-js.js";

export interface Timing {
  runsMs: number[];
  bestMs: number;
  medianMs: number;
  bestGflops: number;
  medianGflops: number;
}

export interface NumpyRun {
  label: string;
  /** The OpenBLAS variables as the subprocess saw them (null = unset). */
  env: Record<string, string | null>;
  numpyVersion?: string;
  blas?: string;
  float32?: Timing;
  float64?: Timing;
  /** Why this run has no figures (no python3/numpy, crash). */
  error?: string;
}

export interface KernelBenchResult {
  shape: { rows: number; k: number; n: number };
  flopsPerRun: number;
  machine: { node: string; cpu: string; cores: number };
  /** The public matmulF32 / matmulF64, running on `backend`. */
  ours: { backend: "wasm-simd" | "js"; float32: Timing; float64: Timing };
  /** The plain-JS kernels (the fallback where WebAssembly SIMD is unavailable). */
  jsFallback: { float32: Timing; float64: Timing };
  numpy: NumpyRun[];
  markdown: string;
}

export interface KernelBenchOptions {
  rows?: number;
  k?: number;
  n?: number;
  /** Runs per kernel (numpy does the same count). Default 5; the JS fallback gets at most 3. */
  reps?: number;
  /** Per-kernel time budget in ms: no further run once it would be exceeded (at least one run). Default 12 s. */
  budgetMs?: number;
  /** Set false to skip numpy. */
  numpy?: boolean;
}

function timing(runsMs: number[], flops: number): Timing {
  const sorted = [...runsMs].sort((a, b) => a - b);
  const bestMs = sorted[0]!;
  const mid = sorted.length >> 1;
  const medianMs = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { runsMs, bestMs, medianMs, bestGflops: flops / bestMs / 1e6, medianGflops: flops / medianMs / 1e6 };
}

/** Deterministic fill in [-0.5, 0.5). */
function fill<T extends Float32Array | Float64Array>(array: T, seed: number): T {
  let s = seed >>> 0;
  for (let i = 0; i < array.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    array[i] = s / 2 ** 32 - 0.5;
  }
  return array;
}

function timeKernel(run: () => void, reps: number, budgetMs: number): number[] {
  const runs: number[] = [];
  const started = performance.now();
  // Another run only if it is expected to finish within the budget.
  while (runs.length < reps && (runs.length === 0 || performance.now() - started + runs[runs.length - 1]! <= budgetMs)) {
    const t = performance.now();
    run();
    runs.push(performance.now() - t);
  }
  return runs;
}

const OPENBLAS_VARS = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS"] as const;

function numpyScript(rows: number, k: number, n: number, reps: number): string {
  return `
import json, os, time
import numpy as np
blas = None
try:
    cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    blas = f"{cfg.get('name')} {cfg.get('version')}"
except Exception:
    pass
rng = np.random.default_rng(0)
out = {"numpy": np.__version__, "blas": blas, "env": {v: os.environ.get(v) for v in ${JSON.stringify(OPENBLAS_VARS)}}, "times": {}}
for name, dt in (("float32", np.float32), ("float64", np.float64)):
    x = (rng.random((${rows}, ${k})) - 0.5).astype(dt)
    w = (rng.random((${k}, ${n})) - 0.5).astype(dt)
    x @ w
    times = []
    for _ in range(${reps}):
        t = time.perf_counter()
        x @ w
        times.append((time.perf_counter() - t) * 1000)
    out["times"][name] = times
print(json.dumps(out))
`;
}

function runNumpy(label: string, env: NodeJS.ProcessEnv, rows: number, k: number, n: number, reps: number, flops: number): Promise<NumpyRun> {
  return new Promise((resolve) => {
    execFile("python3", ["-c", numpyScript(rows, k, n, reps)], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      const seen = Object.fromEntries(OPENBLAS_VARS.map((v) => [v, env[v] ?? null]));
      if (error) {
        resolve({ label, env: seen, error: (stderr.trim().split("\n").pop() || error.message).slice(0, 200) });
        return;
      }
      const parsed = JSON.parse(stdout) as {
        numpy: string;
        blas: string | null;
        env: Record<string, string | null>;
        times: { float32: number[]; float64: number[] };
      };
      resolve({
        label,
        env: parsed.env,
        numpyVersion: parsed.numpy,
        ...(parsed.blas ? { blas: parsed.blas } : {}),
        float32: timing(parsed.times.float32, flops),
        float64: timing(parsed.times.float64, flops),
      });
    });
  });
}

function envWithout(names: readonly string[], extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of names) delete env[name];
  return { ...env, ...extra };
}

function markdown(result: Omit<KernelBenchResult, "markdown">): string {
  const { rows, k, n } = result.shape;
  const f = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const pct = (v: number) => `${(v * 100).toPrecision(2)}%`;
  const allThreads = `all (${result.machine.cores})`;
  const oursLabel = result.ours.backend === "wasm-simd" ? "ours: WebAssembly SIMD" : "ours: plain JS (no WebAssembly SIMD here)";
  const lines = [
    `Alignment kernel: x ${rows}×${k} · W ${k}×${n} (${(result.flopsPerRun / 1e9).toFixed(2)} GFLOP per run), ` +
      `${result.machine.cpu}, ${result.machine.cores} cores, Node ${result.machine.node}`,
    "",
    "| implementation | dtype | threads | runs | best GFLOP/s | median GFLOP/s |",
    "|---|---|---|---|---|---|",
  ];
  for (const dtype of ["float32", "float64"] as const) {
    const row = (label: string, threads: string, t: Timing) =>
      lines.push(`| ${label} | ${dtype} | ${threads} | ${t.runsMs.length} | ${f(t.bestGflops)} | ${f(t.medianGflops)} |`);
    row(oursLabel, "1", result.ours[dtype]);
    row("ours: plain-JS fallback", "1", result.jsFallback[dtype]);
    for (const run of result.numpy) {
      const t = run[dtype];
      if (t) row(`numpy ${run.numpyVersion}, ${run.label}`, run.env.OPENBLAS_NUM_THREADS ?? allThreads, t);
      else lines.push(`| numpy, ${run.label} | ${dtype} | – | – | unavailable: ${run.error ?? "?"} | – |`);
    }
  }
  const usable = result.numpy.filter((run) => run.float32 && run.float64);
  if (usable.length > 0) {
    lines.push(
      "",
      `| ours/numpy (best vs best) | ${usable.map((run) => run.label).join(" | ")} |`,
      `|---|${usable.map(() => "---").join("|")}|`,
    );
    for (const dtype of ["float32", "float64"] as const) {
      for (const [label, ours] of [
        [result.ours.backend === "wasm-simd" ? "WebAssembly SIMD" : "plain JS", result.ours[dtype]],
        ["plain-JS fallback", result.jsFallback[dtype]],
      ] as const) {
        lines.push(`| ${label}, ${dtype} | ${usable.map((run) => pct(ours.bestGflops / run[dtype]!.bestGflops)).join(" | ")} |`);
      }
    }
  }
  const asIs = result.numpy[0];
  if (asIs && !asIs.error) {
    const set = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"].filter((v) => asIs.env[v] != null).map((v) => `${v}=${asIs.env[v]}`);
    lines.push("", `"env as-is" had ${set.length ? set.join(", ") : "neither OPENBLAS_CORETYPE nor OPENBLAS_L2_SIZE set"}.`);
  }
  return lines.join("\n");
}

export async function runKernelBench(options: KernelBenchOptions = {}): Promise<KernelBenchResult> {
  const rows = options.rows ?? 4096;
  const k = options.k ?? 1024;
  const n = options.n ?? 1024;
  const reps = options.reps ?? 5;
  const budgetMs = options.budgetMs ?? 12_000;
  const flops = alignmentFlops(rows, k, n);

  const x32 = fill(new Float32Array(rows * k), 1);
  const w32 = fill(new Float32Array(k * n), 2);
  const out32 = new Float32Array(rows * n);
  const x64 = Float64Array.from(x32);
  const w64 = Float64Array.from(w32);
  const out64 = new Float64Array(rows * n);

  // Warm-up on a slice so both kernels are optimized before timing.
  const warmRows = Math.min(rows, 64);
  matmulF32(x32.subarray(0, warmRows * k), warmRows, k, w32, n);
  matmulF64(x64.subarray(0, warmRows * k), warmRows, k, w64, n);

  const ours = {
    backend: alignmentKernelBackend(),
    float32: timing(timeKernel(() => matmulF32(x32, rows, k, w32, n, out32), reps, budgetMs), flops),
    float64: timing(timeKernel(() => matmulF64(x64, rows, k, w64, n, out64), reps, budgetMs), flops),
  };
  matmulF32Js(x32.subarray(0, warmRows * k), warmRows, k, w32, n, new Float32Array(warmRows * n));
  matmulF64Js(x64.subarray(0, warmRows * k), warmRows, k, w64, n, new Float64Array(warmRows * n));
  const jsReps = Math.min(reps, 3); // the fallback is ~10× slower; fewer runs keep the bench short
  const jsFallback = {
    float32: timing(timeKernel(() => matmulF32Js(x32, rows, k, w32, n, out32), jsReps, budgetMs), flops),
    float64: timing(timeKernel(() => matmulF64Js(x64, rows, k, w64, n, out64), jsReps, budgetMs), flops),
  };

  const numpy: NumpyRun[] = [];
  if (options.numpy !== false) {
    numpy.push(await runNumpy("env as-is", process.env, rows, k, n, reps, flops));
    const unset = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"];
    numpy.push(await runNumpy("OPENBLAS_CORETYPE/L2_SIZE unset", envWithout(unset), rows, k, n, reps, flops));
    numpy.push(
      await runNumpy("unset, 1 thread", envWithout(unset, { OPENBLAS_NUM_THREADS: "1" }), rows, k, n, reps, flops),
    );
  }

  const result = {
    shape: { rows, k, n },
    flopsPerRun: flops,
    machine: { node: process.versions.node, cpu: cpus()[0]?.model.trim() ?? "unknown CPU", cores: cpus().length },
    ours,
    jsFallback,
    numpy,
  };
  return { ...result, markdown: markdown(result) };
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  const result = await runKernelBench();
  console.log(result.markdown);
}
