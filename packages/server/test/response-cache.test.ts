import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ResponseCache } from "../src/http/response-cache.js";
import { createStore } from "../src/store/create-store.js";
import { withReadCache } from "../src/store/read-cache.js";
import type { Store } from "../src/store/store.js";
import { openMigratedDatabase, type MigratedTestDatabase } from "./support/databases.js";

/** The rendered-response cache of browse pages and stats (REST and batched tRPC), on a real (SQLite) store with its read cache. */
describe("response cache", () => {
  let db: MigratedTestDatabase;
  let store: Store;

  beforeAll(async () => {
    db = await openMigratedDatabase("sqlite");
    store = withReadCache(createStore(db.database), { ttlMs: 60_000 });
  });
  afterAll(async () => {
    await db?.close();
  });

  /** A render the test finishes by hand, counting how many were started. */
  const renders = () => {
    const started: ((body: string) => void)[] = [];
    const compute = () => new Promise<{ status: number; body: string }>((resolve) => started.push((body) => resolve({ status: 200, body })));
    return { started, compute };
  };
  const publish = () =>
    store.insertListing({ sellerId: 1, memoryType: "kv_cache", sourceModel: "m", priceCents: 100, description: null, tokenCount: null, contextLength: null, payloadDigest: "a".repeat(64), payloadSize: 1 });

  test("misses of one URL during its render share that render; the result is served until a write", async () => {
    const cache = new ResponseCache(store, 60_000);
    const { started, compute } = renders();
    const first = cache.render("/a", ["listings"], compute);
    const second = cache.render("/a", ["listings"], compute);
    const other = cache.render("/b", ["listings"], compute);
    expect(started).toHaveLength(2); // "/a" once, "/b" once
    started[0]!("page a");
    started[1]!("page b");
    expect(await Promise.all([first, second, other])).toEqual([
      { status: 200, body: "page a" },
      { status: 200, body: "page a" },
      { status: 200, body: "page b" },
    ]);
    expect(cache.get("/a")?.body).toBe("page a");
    await publish();
    expect(cache.get("/a")).toBeUndefined();
  });

  test("an entry rendered from several groups dies with a write to any of them, and only those", async () => {
    const cache = new ResponseCache(store, 60_000);
    await cache.render("/page-and-stats", ["listings", "stats"], async () => ({ status: 200, body: "both" }));
    await cache.render("/chains", ["chains"], async () => ({ status: 200, body: "chains" }));
    await publish(); // listings and stats
    expect(cache.get("/page-and-stats")).toBeUndefined();
    expect(cache.get("/chains")?.body).toBe("chains");
  });

  test("a miss after a write does not wait for a render that began before it", async () => {
    const cache = new ResponseCache(store, 60_000);
    const { started, compute } = renders();
    const before = cache.render("/a", ["listings"], compute);
    await publish();
    const after = cache.render("/a", ["listings"], compute);
    expect(started).toHaveLength(2);
    started[1]!("after the write");
    started[0]!("before the write");
    expect(await after).toEqual({ status: 200, body: "after the write" });
    expect(await before).toEqual({ status: 200, body: "before the write" });
    // Only the render that saw the write is kept.
    expect(cache.get("/a")?.body).toBe("after the write");
  });
});
