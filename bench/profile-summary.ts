/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or `BENCH_CPU_PROF_DIR=… pnpm bench`):
 * self time per function and per package, heaviest first, as shares of the
 * busy (non-idle) time. `skipMs` drops the first part of the profile (start-up:
 * module loading, migrations) so a load's profile is read on its own.
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
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < skipMs * 1000) continue;
    const id = profile.samples[i]!;
    if (byId.get(id)!.callFrame.functionName === "(idle)") {
      idle += delta;
      continue;
    }
    self.set(id, (self.get(id) ?? 0) + delta);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const [id, micros] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const file = url.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, "").replace(/^file:\/\/.*\/packages\//, "packages/");
    const key = `${functionName || "(anonymous)"}  ${file}:${lineNumber + 1}`;
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
    `busy: ${(total / 1000).toFixed(0)} ms, idle: ${(idle / 1000).toFixed(0)} ms (after skipping ${skipMs} ms)`,
    "",
    "self time by package:",
    ...rows(byPackage, 20),
    "",
    "self time by function:",
    ...rows(byFunction, top),
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top, skipMs] = process.argv.slice(2);
  if (!file) throw new Error("usage: bench/profile-summary.ts <file.cpuprofile> [top] [skipMs]");
  process.stdout.write(`${summarise(JSON.parse(readFileSync(file, "utf8")) as Profile, Number(top ?? 30), Number(skipMs ?? 0))}\n`);
}
