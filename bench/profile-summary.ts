/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or `BENCH_CPU_PROF_DIR=… pnpm bench`):
 * self time per function and per package, heaviest first, as shares of the
 * busy (non-idle) time. `skipMs` drops the first part of the profile (start-up:
 * module loading, migrations) so a load's profile is read on its own; a
 * negative `skipMs` keeps only the busiest window of that many milliseconds
 * (the load run) instead.
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=30] [skipMs=0]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** `node_modules/.pnpm/<pkg>@<v>/node_modules/<pkg>/…` → `<pkg>`; our sources → `packages/<name>`; Node internals → `node:`. */
function packageOf(url: string): string {
  if (!url) return "(native, gc)";
  if (url.startsWith("node:")) return "node: (core)";
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pnpm) return pnpm[1]!;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const ours = /packages\/(\w+)\//.exec(url);
  return ours ? `packages/${ours[1]}` : url;
}

export function summarise(profile: Profile, top = 30, skipMs = 0): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let at = 0;
  let idle = 0;
  const isIdle = (i: number) => byId.get(profile.samples[i]!)!.callFrame.functionName === "(idle)";
  let from = skipMs * 1000;
  let to = Infinity;
  if (skipMs < 0) {
    // Busiest window of |skipMs| ms: two pointers over sample times.
    const width = -skipMs * 1000;
    const times: number[] = [];
    for (let i = 0, t = 0; i < profile.samples.length; i++) times.push((t += profile.timeDeltas[i] ?? 0));
    let best = -1;
    let busy = 0;
    for (let lo = 0, hi = 0; hi < times.length; hi++) {
      if (!isIdle(hi)) busy += profile.timeDeltas[hi] ?? 0;
      while (times[hi]! - times[lo]! > width) {
        if (!isIdle(lo)) busy -= profile.timeDeltas[lo] ?? 0;
        lo++;
      }
      if (busy > best) [best, from, to] = [busy, times[lo]!, times[hi]!];
    }
  }
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < from || at > to) continue;
    const id = profile.samples[i]!;
    if (isIdle(i)) {
      idle += delta;
      continue;
    }
    self.set(id, (self.get(id) ?? 0) + delta);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  // Inclusive time: a sample counts for every distinct function on its stack.
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const keyOf = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const file = url.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, "").replace(/^file:\/\/.*\/packages\//, "packages/");
    return `${functionName || "(anonymous)"}  ${file}:${lineNumber + 1}`;
  };
  const inclusive = new Map<string, number>();
  for (const [id, micros] of self) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) seen.add(keyOf(at));
    for (const key of seen) inclusive.set(key, (inclusive.get(key) ?? 0) + micros);
  }
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const [id, micros] of self) {
    const { url } = byId.get(id)!.callFrame;
    const key = keyOf(id);
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
    const pkg = packageOf(url);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + micros);
  }
  const pct = (v: number) => `${((100 * v) / total).toFixed(1).padStart(5)}%`;
  const rows = (map: Map<string, number>, n: number) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${pct(v)}  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  return [
    `busy: ${(total / 1000).toFixed(0)} ms, idle: ${(idle / 1000).toFixed(0)} ms (window ${(from / 1000).toFixed(0)}–${Number.isFinite(to) ? (to / 1000).toFixed(0) : "end"} ms)`,
    "",
    "self time by package:",
    ...rows(byPackage, 20),
    "",
    "self time by function:",
    ...rows(byFunction, top),
    "",
    "inclusive time by function (self + callees):",
    ...rows(inclusive, top),
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top, skipMs] = process.argv.slice(2);
  if (!file) throw new Error("usage: bench/profile-summary.ts <file.cpuprofile> [top] [skipMs]");
  process.stdout.write(`${summarise(JSON.parse(readFileSync(file, "utf8")) as Profile, Number(top ?? 30), Number(skipMs ?? 0))}\n`);
}
