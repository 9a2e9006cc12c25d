import type { LoadResult } from "./load.js";

/** What `pnpm bench` writes to bench/results/latest.json (plus `markdown`). */
export interface ScenarioResult {
  name: string;
  title: string;
  service: MeasuredLoad;
  baseline?: MeasuredLoad;
  /** service req/s ÷ baseline req/s */
  ratio?: number;
  /** open-loop run at half the service's maximum */
  halfLoad?: HalfLoadResult;
  /** the baseline, open-loop at half its own maximum: what this machine allows a server with no work of its own */
  baselineHalfLoad?: HalfLoadResult;
  /** another build of the service in the same turns (BENCH_AB), and its req/s ÷ this build's */
  other?: MeasuredLoad;
  otherRatio?: number;
}

/** A load run with the server's peak RSS and CPU per request, and the local database server's CPU per request (MariaDB on this machine) */
export type MeasuredLoad = LoadResult & { rssMb: number; cpuUsPerRequest: number; dbCpuUsPerRequest?: number };

export type HalfLoadResult = MeasuredLoad & { targetRate: number; senderLagP99Ms: number };

export interface DialectReport {
  dialect: "sqlite" | "mysql";
  /** the service's RSS one second after start, before any request */
  idleRssMb: number;
  /** the lowest RSS of the same idle service over its first `idleSettleS` seconds (V8's memory reducer shrinks an idle heap) */
  idleRssSettledMb?: number;
  /** seconds after start the lowest RSS was read, and how long the service was watched */
  idleRssSettledAtS?: number;
  idleSettleS?: number;
  scenarios: ScenarioResult[];
  seconds: number;
}

export interface IdleConnectionsResult {
  requested: number;
  open: number;
  failed: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  /** average over all connections: (RSS after − RSS before) / open */
  bytesPerConnection: number;
  /** connections open, and the server's RSS, at the first third */
  openAtThird?: number;
  rssAtThirdMb?: number;
  /** the last two thirds: (RSS after − RSS at the first third) / the connections between */
  marginalBytesPerConnection?: number;
}

export interface BenchReport {
  date: string;
  machine: { cpu: string; cores: number; memoryGb: number; node: string; platform: string; loadAverageAtStart: number[] };
  settings: { durationS: number; warmupS: number; connections: number; listings: number; chains: number; slices?: number; otherBuild?: string };
  dialects: DialectReport[];
  skipped?: string[];
  idleConnections?: { openFilesLimit: number; service: IdleConnectionsResult & { idleRssMb: number }; baseline: IdleConnectionsResult };
  kernel?: { result?: unknown; markdown?: string; error?: string };
  alignment?: { result?: unknown; markdown?: string; error?: string };
  payloads?: { result?: unknown; markdown?: string; error?: string };
  totalSeconds?: number;
}

const n0 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "–" : Math.round(v).toLocaleString("en-US"));
const n1 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "–" : v.toFixed(1));
const n2 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "–" : v.toFixed(2));
const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "–" : v < 10 ? v.toFixed(1) : Math.round(v).toString());

interface Target {
  label: string;
  value: (report: BenchReport, dialect: DialectReport) => number | undefined;
  format: (v: number) => string;
  met: (v: number) => boolean;
}

const scenario = (d: DialectReport, name: string) => d.scenarios.find((s) => s.name === name);

/** The targets of issue 7, checked per dialect. */
const TARGETS: Target[] = [
  { label: "/health ≥ 0.9× bare Fastify", value: (_r, d) => scenario(d, "health")?.ratio, format: (v) => `${n2(v)}×`, met: (v) => v >= 0.9 },
  { label: "/health ≥ 20,000 req/s", value: (_r, d) => scenario(d, "health")?.service.rps, format: n0, met: (v) => v >= 20_000 },
  {
    label: "REST browse, cache off ≥ 0.8× driver baseline",
    value: (_r, d) => scenario(d, "rest-browse-nocache")?.ratio,
    format: (v) => `${n2(v)}×`,
    met: (v) => v >= 0.8,
  },
  {
    label: "tRPC browse, cache off ≥ 0.5× driver baseline",
    value: (_r, d) => scenario(d, "trpc-browse-nocache")?.ratio,
    format: (v) => `${n2(v)}×`,
    met: (v) => v >= 0.5,
  },
  { label: "REST browse, cache warm ≥ 10,000 req/s", value: (_r, d) => scenario(d, "rest-browse")?.service.rps, format: n0, met: (v) => v >= 10_000 },
  ...(["rest-browse", "rest-browse-nocache", "publish", "purchase"] as const).map(
    (name): Target => ({
      label: `${name}: p99 ≤ 10 ms at 50% of max`,
      value: (_r, d) => scenario(d, name)?.halfLoad?.p99Ms,
      format: (v) => `${ms(v)} ms`,
      met: (v) => v <= 10,
    }),
  ),
  { label: "idle RSS at start ≤ 80 MB", value: (_r, d) => d.idleRssMb, format: (v) => `${n1(v)} MB`, met: (v) => v <= 80 },
  { label: "idle RSS once settled (idle, no request) ≤ 80 MB", value: (_r, d) => d.idleRssSettledMb, format: (v) => `${n1(v)} MB`, met: (v) => v <= 80 },
  {
    label: "≤ 6 KB RSS per idle connection (marginal, last two thirds)",
    value: (r) => (r.idleConnections?.service.marginalBytesPerConnection !== undefined ? r.idleConnections.service.marginalBytesPerConnection / 1024 : undefined),
    format: (v) => `${n1(v)} KB`,
    met: (v) => v <= 6,
  },
];

export function renderReport(report: BenchReport): string {
  const m = report.machine;
  const lines: string[] = [];
  lines.push(`## Benchmark — ${report.date.slice(0, 10)}`, "");
  lines.push(
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB RAM, ${m.platform}, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(" / ")}. ` +
      `Load generator, service, baseline and database share the machine. ` +
      `${report.settings.connections} connections, ${report.settings.warmupS} s warm-up + ${report.settings.durationS} s per run` +
      (report.settings.slices && report.settings.slices > 1 ? ` (service and baseline in turns, ${report.settings.slices} slices each)` : "") +
      "; " +
      `${report.settings.listings.toLocaleString("en-US")} listings, ${report.settings.chains.toLocaleString("en-US")} chains.`,
    "",
  );
  for (const d of report.dialects) {
    lines.push(`### ${d.dialect === "sqlite" ? "SQLite" : "MariaDB"}`, "");
    // MariaDB shares the cores: its CPU per request is shown when it runs on this machine.
    const db = d.scenarios.some((s) => s.service.dbCpuUsPerRequest !== undefined);
    const dbHeader = (who: string) => (db ? ` ${who}DB CPU µs/req |` : "");
    const dbCell = (run: MeasuredLoad | undefined) => (db ? ` ${n0(run?.dbCpuUsPerRequest)} |` : "");
    lines.push(
      `| scenario | req/s | p50 ms | p99 ms | errors | RSS MB | CPU µs/req |${dbHeader("")} baseline req/s | baseline p99 ms | baseline CPU µs/req |${dbHeader("baseline ")} ratio |`,
    );
    lines.push(`|---|--:|--:|--:|--:|--:|--:|${db ? "--:|" : ""}--:|--:|--:|${db ? "--:|" : ""}--:|`);
    for (const s of d.scenarios) {
      lines.push(
        `| ${s.title} | ${n0(s.service.rps)} | ${ms(s.service.p50Ms)} | ${ms(s.service.p99Ms)} | ${s.service.errors} | ${n0(s.service.rssMb)} | ${n0(s.service.cpuUsPerRequest)} |${dbCell(s.service)} ` +
          `${n0(s.baseline?.rps)} | ${ms(s.baseline?.p99Ms)} | ${n0(s.baseline?.cpuUsPerRequest)} |${dbCell(s.baseline)} ${s.ratio === undefined ? "–" : `${n2(s.ratio)}×`} |`,
      );
    }
    const steady = d.scenarios.filter((s) => s.halfLoad);
    if (steady.length) {
      lines.push("", "At half the measured maximum (open loop, latency from the scheduled send time):", "");
      lines.push(
        "| scenario | rate req/s | p50 ms | p99 ms | errors | load generator's own lag p99 ms | baseline at half its maximum: rate req/s | baseline p99 ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
      );
      for (const s of steady) {
        const half = s.halfLoad!;
        lines.push(
          `| ${s.title} | ${n0(half.targetRate)} | ${ms(half.p50Ms)} | ${ms(half.p99Ms)} | ${half.errors} | ${ms(half.senderLagP99Ms)} | ` +
            `${n0(s.baselineHalfLoad?.targetRate)} | ${ms(s.baselineHalfLoad?.p99Ms)} |`,
        );
      }
    }
    const compared = d.scenarios.filter((s) => s.other);
    if (compared.length) {
      lines.push("", `This build against the other one (${report.settings.otherBuild ?? "?"}), in the same turns:`, "");
      lines.push("| scenario | this build req/s | CPU µs/req | other build req/s | CPU µs/req | other ÷ this, req/s | other ÷ this, CPU per request |", "|---|--:|--:|--:|--:|--:|--:|");
      for (const s of compared) {
        const other = s.other!;
        lines.push(
          `| ${s.title} | ${n0(s.service.rps)} | ${n0(s.service.cpuUsPerRequest)} | ${n0(other.rps)} | ${n0(other.cpuUsPerRequest)} | ` +
            `${n2(s.otherRatio)}× | ${n2(other.cpuUsPerRequest / s.service.cpuUsPerRequest)}× |`,
        );
      }
    }
    const settled =
      d.idleRssSettledMb === undefined ? "" : `; lowest over its first ${d.idleSettleS} s, still idle: ${n1(d.idleRssSettledMb)} MB (${d.idleRssSettledAtS} s after start)`;
    lines.push("", `Idle RSS at start (1 s after it answers, no request yet): ${n1(d.idleRssMb)} MB${settled}.`, "");
  }
  if (report.idleConnections) {
    const { service, baseline, openFilesLimit } = report.idleConnections;
    lines.push("### Idle keep-alive connections", "");
    lines.push(
      `Open-files limit ${openFilesLimit}. Each connection made one \`GET /health\` and stayed open. RSS is read 2 s after a third of them, and all, are open.`,
      "Per connection: the average over all (after − before), and the marginal cost of the last two thirds (after − at a third), which leaves out what a server allocates once as the first connections arrive.",
      "",
    );
    lines.push(
      "| server | connections open | failed | RSS before MB | RSS at a third MB | RSS after MB | average per connection | marginal per connection |",
      "|---|--:|--:|--:|--:|--:|--:|--:|",
    );
    for (const [name, r] of [["service", service], ["bare Fastify", baseline]] as const)
      lines.push(
        `| ${name} | ${n0(r.open)} | ${r.failed} | ${n1(r.rssBeforeMb)} | ${r.rssAtThirdMb === undefined ? "–" : n1(r.rssAtThirdMb)} | ${n1(r.rssAfterMb)} | ${n1(r.bytesPerConnection / 1024)} KB | ${r.marginalBytesPerConnection === undefined ? "–" : `${n1(r.marginalBytesPerConnection / 1024)} KB`} |`,
      );
    lines.push("");
  }
  if (report.dialects.length) {
    lines.push("### Targets", "");
    lines.push(`| target | ${report.dialects.map((d) => d.dialect).join(" | ")} |`, `|---|${report.dialects.map(() => "--:|").join("")}`);
    for (const t of TARGETS) {
      const cells = report.dialects.map((d) => {
        const v = t.value(report, d);
        return v === undefined || Number.isNaN(v) ? "not measured" : `${t.format(v)} ${t.met(v) ? "✅" : "❌"}`;
      });
      lines.push(`| ${t.label} | ${cells.join(" | ")} |`);
    }
    lines.push("");
  }
  for (const [title, part] of [
    ["Alignment kernel", report.kernel],
    ["Alignment under load", report.alignment],
    ["Payload transfer", report.payloads],
  ] as const) {
    if (!part) continue;
    lines.push(`### ${title}`, "");
    lines.push(part.markdown ?? (part.error ? `Failed: ${part.error.split("\n")[0]}` : "(no Markdown)"), "");
  }
  if (report.skipped?.length) lines.push(`Skipped: ${report.skipped.join("; ")}.`, "");
  if (report.totalSeconds !== undefined) lines.push(`Total time: ${Math.round(report.totalSeconds)} s.`);
  return lines.join("\n");
}
