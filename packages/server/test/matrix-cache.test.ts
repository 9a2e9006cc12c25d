import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { AlignmentStore } from "../src/alignment/alignment-store.js";
import { createAlignmentStore } from "../src/alignment/create-alignment-store.js";
import { withMatrixCache } from "../src/alignment/matrix-cache.js";
import { openMigratedDatabase, type MigratedTestDatabase } from "./support/databases.js";
import { newMatrix as matrix } from "./support/matrices.js";

/**
 * The matrix a pair's purchases apply, kept for a TTL: a change through this
 * instance shows at once, a lookup that raced a change is not kept, and a
 * change by another instance (the store underneath) shows within the TTL.
 */

const PAIR = ["llama-3-8b", "gpt-4"] as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("matrix lookup cache", () => {
  let db: MigratedTestDatabase;
  let underlying: AlignmentStore;
  beforeEach(async () => {
    db = await openMigratedDatabase("sqlite");
    underlying = createAlignmentStore(db.database);
  });
  afterEach(() => db.close());

  test("registrations and status changes through it show at once; other writers' within the TTL", async () => {
    const cached = withMatrixCache(underlying, { ttlMs: 60_000 });
    expect(await cached.newestActiveMatrix(...PAIR)).toBeNull();
    const id = await cached.insertMatrix(matrix());
    expect((await cached.newestActiveMatrix(...PAIR))?.id).toBe(id);
    await cached.setMatrixStatus(id, "inactive");
    expect(await cached.newestActiveMatrix(...PAIR)).toBeNull();

    // another instance registers one: this one keeps its answer until the TTL
    const short = withMatrixCache(underlying, { ttlMs: 400 });
    expect(await short.newestActiveMatrix(...PAIR)).toBeNull();
    const elsewhere = await underlying.insertMatrix(matrix());
    expect(await short.newestActiveMatrix(...PAIR)).toBeNull();
    await sleep(450);
    expect((await short.newestActiveMatrix(...PAIR))?.id).toBe(elsewhere);
  });

  test("a lookup in flight when a matrix changes is answered but not kept", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let slow = true;
    const delayed: AlignmentStore = {
      ...underlying,
      async newestActiveMatrix(source, target) {
        const found = await underlying.newestActiveMatrix(source, target);
        if (slow) await gate; // read before the change, answered after it
        return found;
      },
    };
    const cached = withMatrixCache(delayed, { ttlMs: 60_000 });
    const inFlight = cached.newestActiveMatrix(...PAIR);
    await sleep(5);
    const id = await cached.insertMatrix(matrix());
    slow = false;
    release();
    expect(await inFlight).toBeNull();
    expect((await cached.newestActiveMatrix(...PAIR))?.id).toBe(id);
  });

  test("a TTL of 0 is no cache", async () => {
    expect(withMatrixCache(underlying, { ttlMs: 0 })).toBe(underlying);
  });
});
