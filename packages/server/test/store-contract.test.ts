import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { migrate } from "../src/db/migrate.js";
import { openDatabase, type Database } from "../src/db/open-database.js";
import { createStore } from "../src/store/create-store.js";
import { ChainUnavailableError, PAYLOAD_CHUNK_BYTES, type NewChain, type NewListing, type Store } from "../src/store/store.js";
import { createTestDatabase, testDialects, type TestDatabase } from "./support/databases.js";

/** One contract, two implementations: every case runs on SQLite and on MariaDB. */
const listing = (over: Partial<NewListing> = {}): NewListing => ({
  sellerId: 7,
  memoryType: "kv_cache",
  sourceModel: "llama-3-8b",
  priceCents: 999,
  description: "warm cache",
  tokenCount: 3,
  contextLength: 3,
  payloadDigest: "a".repeat(64),
  payloadSize: 10,
  ...over,
});

const chain = (over: Partial<NewChain> = {}): NewChain => ({
  creatorId: 9,
  chainName: "Financial Analysis Chain",
  description: "Reasoning chain for financial data analysis",
  category: "finance",
  sourceModel: "gpt-4",
  pricePerUseCents: 299,
  stepCount: 4,
  inputExample: JSON.stringify({ query: "Q4" }),
  outputExample: null,
  payloadDigest: "b".repeat(64),
  payloadSize: 10,
  ...over,
});

for (const dialect of await testDialects()) {
  describe(`store contract (${dialect})`, () => {
    let testDb: TestDatabase;
    let database: Database;
    let store: Store;

    beforeEach(async () => {
      testDb = await createTestDatabase(dialect);
      database = await openDatabase(testDb.config);
      await migrate(database);
      store = createStore(database);
    });
    afterEach(async () => {
      await store.close();
      await testDb.drop();
    });

    test("a listing round-trips with exact money and UTC time", async () => {
      const before = Date.now();
      const id = await store.insertListing(listing({ priceCents: 9_999_999_999 }));
      const row = await store.findListing(id);
      expect(row).toMatchObject({ id, sellerId: 7, buyerId: 0, status: "pending", priceCents: 9_999_999_999, listingId: null, chainId: null });
      expect(Math.abs(row!.createdAt.getTime() - before)).toBeLessThan(5_000);
    });

    test("browse: available listings only, newest first, filters, keyset paging", async () => {
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) ids.push(await store.insertListing(listing({ priceCents: 100 * (i + 1), memoryType: i % 2 ? "long_term_memory" : "kv_cache" })));
      const sold = await store.findListing(ids[0]!);
      await store.recordPurchase({ listing: sold!, buyerId: 50, targetModel: "x" });

      const all = await store.browseListings({ limit: 10, offset: 0 });
      expect(all.map((r) => r.id)).toEqual([...ids].reverse()); // trades are not listings; sold-to-one is still for sale

      const kv = await store.browseListings({ memoryType: "kv_cache", minPriceCents: 200, maxPriceCents: 500, limit: 10, offset: 0 });
      expect(kv.map((r) => r.priceCents)).toEqual([500, 300]);

      const page1 = await store.browseListings({ limit: 2, offset: 0 });
      const last = page1[1]!;
      const page2 = await store.browseListings({ limit: 2, offset: 0, after: { createdAt: last.createdAt, id: last.id } });
      expect([...page1, ...page2].map((r) => r.id)).toEqual(all.slice(0, 4).map((r) => r.id));
    });

    test("a purchase is recorded once per buyer; a repeat returns the first", async () => {
      const id = await store.insertListing(listing());
      const row = (await store.findListing(id))!;
      const first = await store.recordPurchase({ listing: row, buyerId: 11, targetModel: "gpt-4" });
      const second = await store.recordPurchase({ listing: row, buyerId: 11, targetModel: "other" });
      const other = await store.recordPurchase({ listing: row, buyerId: 12, targetModel: "gpt-4" });
      expect(first.created).toBe(true);
      expect(second).toEqual({ trade: first.trade, created: false });
      expect(other.created).toBe(true);
      expect(first.trade).toMatchObject({ listingId: id, buyerId: 11, sellerId: 7, status: "completed", priceCents: 999, targetModel: "gpt-4" });
      expect(await store.findPurchase(row, 11)).toEqual(first.trade); // the returned trade is the stored row
      expect(await store.findTrade(other.trade.id)).toEqual(other.trade);
      expect(await store.findPurchase(row, 13)).toBeNull();
      expect(await store.findListing(first.trade.id)).toBeNull(); // a trade is not a listing
    });

    test("chain use bumps counters with the trade, and refuses inactive chains", async () => {
      const chainId = await store.insertChain(chain());
      const row = (await store.findChain(chainId))!;
      expect(row).toMatchObject({ status: "active", usageCount: 0, totalRevenueCents: 0, pricePerUseCents: 299 });
      const use1 = await store.recordChainUse({ chain: row, userId: 20, priceCents: 299, targetModel: "gpt-4" });
      const use2 = await store.recordChainUse({ chain: row, userId: 9, priceCents: 0, targetModel: "gpt-4" });
      expect(use2.chain).toMatchObject({ usageCount: 2, totalRevenueCents: 299 });
      expect(use2.chain).toEqual(await store.findChain(chainId)); // the counters read back decode like the stored row
      expect(use1.trade).toMatchObject({ chainId, buyerId: 20, sellerId: 9, memoryType: "reasoning_chain", priceCents: 299 });
      expect(await store.findTrade(use1.trade.id)).toEqual(use1.trade); // the returned trade is the stored row

      if (database.dialect === "sqlite") database.sqlite.exec(`UPDATE reasoning_chains SET status = 'inactive' WHERE id = ${chainId}`);
      else await database.pool.query("UPDATE reasoning_chains SET status = 'inactive' WHERE id = ?", [chainId]);
      await expect(store.recordChainUse({ chain: row, userId: 20, priceCents: 299, targetModel: "x" })).rejects.toBeInstanceOf(ChainUnavailableError);
      expect((await store.findChain(chainId))!.usageCount).toBe(2);
      expect(await store.browseChains({ limit: 10, offset: 0 })).toEqual([]);
    });

    test("a chain use whose trade cannot be written moves no counter (one transaction)", async () => {
      const chainId = await store.insertChain(chain());
      const row = (await store.findChain(chainId))!;
      // buyer_id is NOT NULL: the INSERT fails after the UPDATE has bumped the counters
      await expect(store.recordChainUse({ chain: row, userId: null as unknown as number, priceCents: 299, targetModel: "m" })).rejects.toThrow();
      expect(await store.findChain(chainId)).toEqual(row);
      const use = await store.recordChainUse({ chain: row, userId: 5, priceCents: 299, targetModel: "m" });
      expect(use.chain).toMatchObject({ usageCount: 1, totalRevenueCents: 299 });
    });

    test("history by role and stats as exact aggregates", async () => {
      const a = (await store.findListing(await store.insertListing(listing({ sellerId: 1, priceCents: 1050 }))))!;
      const b = (await store.findListing(await store.insertListing(listing({ sellerId: 2, priceCents: 1 }))))!;
      await store.recordPurchase({ listing: a, buyerId: 2, targetModel: "m" });
      await store.recordPurchase({ listing: b, buyerId: 1, targetModel: "m" });
      const c = (await store.findChain(await store.insertChain(chain({ creatorId: 1, pricePerUseCents: 333 }))))!;
      await store.recordChainUse({ chain: c, userId: 2, priceCents: 333, targetModel: "m" });

      expect((await store.listTrades(1, "seller", 10, 0)).map((t) => t.priceCents).sort((x, y) => x - y)).toEqual([333, 1050]);
      expect((await store.listTrades(1, "buyer", 10, 0)).map((t) => t.priceCents)).toEqual([1]);
      expect(await store.listTrades(1, "both", 10, 0)).toHaveLength(3);
      expect(await store.listTrades(1, "both", 1, 1)).toHaveLength(1);

      expect(await store.stats()).toEqual({
        totalMemories: 2,
        availableMemories: 2,
        totalTransactions: 3,
        chainUses: 1,
        totalVolumeCents: 1050 + 1 + 333,
        totalReasoningChains: 1,
        activeReasoningChains: 1,
      });
    });

    test("api keys: by hash, revocation once, usage touch", async () => {
      const key = await store.insertApiKey({ userId: 5, name: "agent", keyHash: "f".repeat(64), prefix: "mx_abcdefgh", scopes: ["read", "trade"], expiresAt: null });
      expect(key).toMatchObject({ userId: 5, scopes: ["read", "trade"], revokedAt: null, lastUsedAt: null });
      expect(await store.findApiKeyByHash("f".repeat(64))).toEqual(key);
      expect(await store.findApiKeyByHash("e".repeat(64))).toBeNull();
      await store.touchApiKeys([key.id], new Date());
      expect((await store.findApiKey(key.id))!.lastUsedAt).toBeInstanceOf(Date);
      expect(await store.revokeApiKey(key.id, new Date())).toBe(true);
      expect(await store.revokeApiKey(key.id, new Date())).toBe(false);
      expect((await store.listApiKeys(5))[0]!.revokedAt).toBeInstanceOf(Date);
      expect(await store.listApiKeys(6)).toEqual([]);
    });

    test("payloads are chunked, stored once and read back byte-identical", async () => {
      const bytes = new Uint8Array(PAYLOAD_CHUNK_BYTES * 2 + 123).map((_, i) => (i * 31) % 251);
      const digest = "c".repeat(64);
      await store.payloads.put({ digest, kind: "kv-cache", tensors: "{}", bytes, ownerId: 1 });
      await store.payloads.put({ digest, kind: "kv-cache", tensors: "{}", bytes, ownerId: 2 });
      expect(await store.payloads.info(digest)).toMatchObject({ digest, size: bytes.length, chunkCount: 3 });
      const read = await store.payloads.read(digest);
      expect(read && Buffer.compare(read, bytes)).toBe(0); // (toEqual on MiBs of bytes is very slow)
      expect(await store.payloads.read("d".repeat(64))).toBeNull();
    });

    test("a publish's payload is stored with its listing or chain, in one transaction", async () => {
      const bytes = new Uint8Array(PAYLOAD_CHUNK_BYTES + 77).map((_, i) => (i * 7) % 251);
      const payload = (digest: string, ownerId: number) => ({ digest, kind: "kv-cache" as const, tensors: "{}", bytes, ownerId });
      const listingId = await store.insertListing(listing({ payloadDigest: "1".repeat(64), payloadSize: bytes.length }), payload("1".repeat(64), 7));
      expect(await store.findListing(listingId)).toMatchObject({ payloadDigest: "1".repeat(64), payloadSize: bytes.length });
      expect(await store.payloads.info("1".repeat(64))).toMatchObject({ size: bytes.length, chunkCount: 2 });
      expect(await store.payloads.isOwner("1".repeat(64), 7)).toBe(true);
      // The same bytes again, by another seller: stored once, owned by both.
      await store.insertListing(listing({ sellerId: 8, payloadDigest: "1".repeat(64) }), payload("1".repeat(64), 8));
      expect(await store.payloads.isOwner("1".repeat(64), 8)).toBe(true);
      const chainId = await store.insertChain(chain({ payloadDigest: "2".repeat(64), payloadSize: bytes.length }), payload("2".repeat(64), 9));
      expect(await store.findChain(chainId)).toMatchObject({ payloadDigest: "2".repeat(64) });
      expect(Buffer.compare((await store.payloads.read("2".repeat(64)))!, bytes)).toBe(0);

      // A row that cannot be written (NOT NULL) takes its payload with it.
      await expect(store.insertListing(listing({ sellerId: null as never, payloadDigest: "3".repeat(64) }), payload("3".repeat(64), 7))).rejects.toThrow();
      await expect(store.insertChain(chain({ creatorId: null as never, payloadDigest: "4".repeat(64) }), payload("4".repeat(64), 9))).rejects.toThrow();
      for (const digest of ["3".repeat(64), "4".repeat(64)]) {
        expect(await store.payloads.info(digest)).toBeNull();
        expect(await store.payloads.isOwner(digest, 7)).toBe(false);
        expect(await store.payloads.isOwner(digest, 9)).toBe(false);
      }
      // …and the connection is fine afterwards.
      expect(await store.insertListing(listing(), payload("5".repeat(64), 7))).toBeGreaterThan(listingId);
    });

    test("ping and migration state", async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      expect(await store.isMigrated()).toBe(true);
      expect((await migrate(database)).applied).toEqual([]);
    });
  });
}
