import { getHeapSpaceStatistics } from "node:v8";
import { expect, test } from "vitest";
import { compactHeap } from "../src/compact-heap.js";

const youngGeneration = () => getHeapSpaceStatistics().find((space) => space.space_name === "new_space")!.space_size;

test("compactHeap shrinks the young generation a burst of allocation grew", async () => {
  // Objects that survive young collections make V8 grow the young generation (as starting up does).
  const kept: object[] = [];
  for (let i = 0; i < 400_000; i++) kept.push({ i, text: `item ${i}` });
  const grown = youngGeneration();
  expect(grown).toBeGreaterThan(4 * 1024 * 1024);
  kept.length = 0;
  await compactHeap();
  expect(youngGeneration()).toBeLessThan(grown / 2);
});
