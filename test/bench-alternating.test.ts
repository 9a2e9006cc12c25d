import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { alternatingMaxThroughput, sliceOrder, type Workload } from "../bench/load.js";

/**
 * The benchmark's ratios come from `alternatingMaxThroughput`: the service and
 * its baseline take turns in slices. Two real HTTP servers here count what
 * they answer inside each measured slice; the result must add up to that,
 * slice order A B, B A, A B.
 */

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A server answering after `delayMs`, counting requests answered while `counting` is on, and the request paths it saw. */
async function countingServer(delayMs: number) {
  const state = { counting: false, answered: 0, paths: new Set<string>() };
  const server = createServer((request, response) => {
    state.paths.add(request.url ?? "");
    setTimeout(() => {
      if (state.counting) state.answered++;
      response.end("{}");
    }, delayMs);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, state };
}

const numbered = (): Workload => ({ next: (i) => ({ method: "GET", path: `/n/${i}` }) });

describe("alternatingMaxThroughput", () => {
  it("alternates the servers slice by slice and adds up each one's slices", async () => {
    const fast = await countingServer(1);
    const slow = await countingServer(8);
    const order: string[] = [];
    const side = (name: string, target: Awaited<ReturnType<typeof countingServer>>) => ({
      url: target.url,
      workload: numbered(),
      onSliceStart: () => {
        order.push(name);
        target.state.counting = true;
      },
      onSliceEnd: () => {
        target.state.counting = false;
      },
    });

    const [a, b] = await alternatingMaxThroughput([side("A", fast), side("B", slow)], { connections: 4, durationS: 3, warmupS: 0, slices: 3 });

    expect(order).toEqual(["A", "B", "B", "A", "A", "B"]);
    for (const [result, target] of [[a!, fast], [b!, slow]] as const) {
      expect(result.durationS).toBeGreaterThan(2.9);
      expect(result.durationS).toBeLessThan(3.5);
      expect(result.errors).toBe(0);
      expect(result.statusCodes["200"]).toBe(result.requests);
      // answers in flight when a slice ends reach the server's count but not the load generator's: at most one per connection and slice
      expect(target.state.answered - result.requests).toBeGreaterThanOrEqual(0);
      expect(target.state.answered - result.requests).toBeLessThanOrEqual(4 * 3);
      expect(result.rps).toBeCloseTo(result.requests / result.durationS, 6);
    }
    // the latencies are the servers' own: 1 ms and 8 ms answers
    expect(b!.p50Ms).toBeGreaterThan(a!.p50Ms + 4);
    expect(b!.p50Ms).toBeGreaterThanOrEqual(8);
    expect(b!.p99Ms).toBeGreaterThanOrEqual(b!.p50Ms);
    expect(a!.rps).toBeGreaterThan(b!.rps * 2);
    // a workload's counter runs on across warm-up and slices: no request repeats
    expect(slow.state.paths.size).toBeGreaterThanOrEqual(b!.requests);
  }, 20_000);

  it("runs a single server as one measured stretch", async () => {
    const only = await countingServer(1);
    const slices: number[] = [];
    const [result] = await alternatingMaxThroughput(
      [{ url: only.url, workload: numbered(), onSliceStart: () => slices.push(Date.now()) }],
      { connections: 2, durationS: 1, warmupS: 0, slices: 5 },
    );
    expect(slices).toHaveLength(1);
    expect(result!.requests).toBeGreaterThan(0);
  });
});

describe("sliceOrder", () => {
  it("two servers take turns A B, B A", () => {
    expect([0, 1, 2, 3].map((slice) => sliceOrder(["A", "B"], slice).join(""))).toEqual(["AB", "BA", "AB", "BA"]);
  });

  it("more servers rotate, forwards then backwards, each taking each place equally often", () => {
    const orders = [0, 1, 2, 3, 4, 5].map((slice) => sliceOrder(["A", "B", "C"], slice).join(""));
    expect(orders).toEqual(["ABC", "BCA", "CAB", "CBA", "ACB", "BAC"]);
    for (const side of "ABC") for (let place = 0; place < 3; place++) expect(orders.filter((o) => o[place] === side)).toHaveLength(2);
    // and each follows each other one as often
    const follows = (a: string, b: string) => orders.filter((o) => o.includes(a + b)).length;
    expect(new Set([follows("A", "B"), follows("B", "A"), follows("A", "C"), follows("C", "A"), follows("B", "C"), follows("C", "B")])).toEqual(new Set([2]));
  });
});
