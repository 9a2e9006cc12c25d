import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ApiKeyVerifier, createApiKey, hashApiKey } from "../src/domain/api-keys.js";
import { createStore } from "../src/store/create-store.js";
import type { ApiKeyRow, Store } from "../src/store/store.js";
import { openMigratedDatabase, type MigratedTestDatabase } from "./support/databases.js";

/** The API-key verification cache on a real (SQLite) store: shared lookups, and revocation racing a lookup. */
describe("API key verifier", () => {
  let db: MigratedTestDatabase;
  let store: Store;

  beforeAll(async () => {
    db = await openMigratedDatabase("sqlite");
    store = createStore(db.database);
  });
  afterAll(async () => {
    await db?.close();
  });

  /** The store, with key lookups counted and held until the test lets them through. */
  const gatedStore = () => {
    const gate = { lookups: 0, open: () => undefined as void, opened: Promise.resolve() };
    gate.opened = new Promise<void>((resolve) => (gate.open = resolve));
    const gated: Store = {
      ...store,
      findApiKeyByHash: async (hash: string): Promise<ApiKeyRow | null> => {
        gate.lookups++;
        const row = await store.findApiKeyByHash(hash);
        await gate.opened;
        return row;
      },
    };
    return { gated, gate };
  };

  test("the stored hash is SHA-256 in hex (keys minted by earlier versions keep verifying)", () => {
    // python3 -c "import hashlib; print(hashlib.sha256(b'mx_example-key').hexdigest())"
    expect(hashApiKey("mx_example-key")).toBe("1b218b0f0fa1c1d384307b6a02987fe3a09c1182e661ef2b0e6985d643c752c9");
  });

  test("concurrent checks of one key share one lookup, then the entry serves", async () => {
    const { key } = await createApiKey(store, { userId: 1, name: "k", scopes: ["read"] });
    const { gated, gate } = gatedStore();
    const verifier = new ApiKeyVerifier(gated, { ttlMs: 60_000, touchIntervalMs: 0 });
    const checks = Promise.all(Array.from({ length: 20 }, () => verifier.verify(key)));
    gate.open();
    const rows = await checks;
    expect(rows.every((row) => row?.keyHash === hashApiKey(key))).toBe(true);
    expect(gate.lookups).toBe(1);
    await verifier.verify(key);
    expect(gate.lookups).toBe(1);
  });

  test("a lookup in flight when the key is revoked is not cached: the next check refuses the key", async () => {
    const { key, id } = await createApiKey(store, { userId: 2, name: "k", scopes: ["read"] });
    const { gated, gate } = gatedStore();
    const verifier = new ApiKeyVerifier(gated, { ttlMs: 60_000, touchIntervalMs: 0 });
    const before = verifier.verify(key); // reads the row before the revocation, answers after it
    while (gate.lookups === 0) await new Promise((r) => setTimeout(r, 1));
    await store.revokeApiKey(id, new Date());
    verifier.forget(id);
    gate.open();
    expect((await before)?.id).toBe(id); // it began before the revocation
    expect(await verifier.verify(key)).toBeNull();
    expect(gate.lookups).toBe(2);
  });
});
