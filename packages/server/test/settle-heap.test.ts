import { getHeapSpaceStatistics } from "node:v8";
import { describe, expect, it } from "vitest";
import { settleHeap } from "../src/settle-heap.js";

const youngGeneration = () => getHeapSpaceStatistics().find((space) => space.space_name === "new_space")!.space_size;

describe("settleHeap", () => {
  it("gives back the young generation that booting grew", async () => {
    // Like a boot: objects that survive their first scavenges make V8 grow the young generation.
    let kept: object[] = [];
    for (let i = 0; i < 600_000; i++) kept.push({ i, label: `row ${i}` });
    const grown = youngGeneration();
    expect(kept.length).toBe(600_000);
    kept = [];

    const ms = await settleHeap();

    expect(ms).toBeGreaterThan(0);
    expect(youngGeneration()).toBeLessThan(grown / 2);
  });
  // That the process can still exit after it (a session left connected keeps it alive) is covered by the
  // ops tests, which SIGTERM the built binary and expect exit 0.
});
