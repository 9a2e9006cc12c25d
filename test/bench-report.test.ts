import { describe, expect, it } from "vitest";
import { renderReport, type BenchReport, type MeasuredLoad } from "../bench/report.js";

/** The Markdown report: with BENCH_AB, a table comparing the other build with this one, ratio for ratio. */

const load = (rps: number, cpuUsPerRequest: number): MeasuredLoad => ({
  rps,
  p50Ms: 1,
  p99Ms: 5,
  meanMs: 1.5,
  requests: rps * 5,
  errors: 0,
  statusCodes: { 200: rps * 5 },
  durationS: 5,
  rssMb: 100,
  cpuUsPerRequest,
});

const report = (withOther: boolean): BenchReport => ({
  date: "2026-11-28T00:00:00.000Z",
  machine: { cpu: "test", cores: 2, memoryGb: 4, node: "v20", platform: "linux x64", loadAverageAtStart: [0, 0, 0] },
  settings: { durationS: 5, warmupS: 1, connections: 32, listings: 10, chains: 1, slices: 5, ...(withOther ? { otherBuild: "/x/dist-old/cli.js" } : {}) },
  dialects: [
    {
      dialect: "mysql",
      idleRssMb: 80,
      seconds: 1,
      scenarios: [
        {
          name: "publish",
          title: "REST publish",
          service: load(800, 1180),
          baseline: load(1000, 700),
          ratio: 0.8,
          ...(withOther ? { other: load(688, 1322), otherRatio: 0.86 } : {}),
        },
      ],
    },
  ],
});

describe("bench report", () => {
  it("compares the other build's req/s and CPU per request with this one's", () => {
    const markdown = renderReport(report(true));
    expect(markdown).toContain("against the other one (/x/dist-old/cli.js)");
    expect(markdown).toContain("| REST publish | 800 | 1,180 | 688 | 1,322 | 0.86× | 1.12× |");
  });

  it("has no such table without another build", () => {
    expect(renderReport(report(false))).not.toContain("other build");
  });
});
