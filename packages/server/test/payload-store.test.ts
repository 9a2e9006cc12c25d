import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { migrate } from "../src/db/migrate.js";
import { openDatabase, type Database } from "../src/db/open-database.js";
import { createStore } from "../src/store/create-store.js";
import { PAYLOAD_CHUNK_BYTES, type PayloadStore } from "../src/store/payload-store.js";
import { createTestDatabase, openMigratedDatabase, testDialects, type MigratedTestDatabase, type TestDatabase } from "./support/databases.js";

/** The payload store's contract on both dialects: streamed uploads, their deduplication and clean-up. */

const chunk = (seq: number, length = PAYLOAD_CHUNK_BYTES) => new Uint8Array(length).fill(seq + 1);
const digestOf = (n: number) => n.toString(16).padStart(64, "0");

async function rows(database: Database, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  if (database.dialect === "mysql") return (await database.pool.query(sql, params))[0] as Record<string, unknown>[];
  return database.sqlite.prepare(sql).all(...params) as Record<string, unknown>[];
}
const count = async (database: Database, table: string, where = "1 = 1", params: unknown[] = []) =>
  Number((await rows(database, `SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params))[0]!.n);

for (const dialect of await testDialects()) {
  describe(`payload store (${dialect})`, () => {
    let testDb: TestDatabase;
    let database: Database;
    let payloads: PayloadStore;

    beforeAll(async () => {
      testDb = await createTestDatabase(dialect);
      database = await openDatabase(testDb.config);
      await migrate(database);
      payloads = createStore(database).payloads;
    });
    afterAll(async () => {
      await database.close();
      await testDb.drop();
    });

    /** A whole upload of `chunks` chunks (the last one short). */
    async function upload(ownerId: number, digest: string, chunks = 3) {
      const uploadId = await payloads.beginUpload(ownerId);
      for (let seq = 0; seq < chunks; seq++) await payloads.writeUploadChunk(uploadId, seq, chunk(seq, seq === chunks - 1 ? 100 : PAYLOAD_CHUNK_BYTES));
      const size = (chunks - 1) * PAYLOAD_CHUNK_BYTES + 100;
      return { uploadId, size, finish: () => payloads.finishUpload({ uploadId, digest, size, chunkCount: chunks, kind: "kv-cache", tensors: "{}", ownerId }) };
    }

    test("a finished upload becomes the payload of its digest, its chunks adopted in place", async () => {
      const digest = digestOf(1);
      const { uploadId, size, finish } = await upload(1, digest);
      expect(await payloads.info(digest)).toBeNull();
      expect(await finish()).toEqual({ created: true });
      expect(await payloads.info(digest)).toEqual({ digest, size, chunkCount: 3, kind: "kv-cache", tensors: "{}", chunkKey: uploadId });
      expect(await payloads.isOwner(digest, 1)).toBe(true);
      expect(await payloads.isOwner(digest, 2)).toBe(false);
      const [middle, last] = await payloads.readChunks(uploadId, 1, 2);
      expect(middle!.length).toBe(PAYLOAD_CHUNK_BYTES);
      expect(middle![0]).toBe(2);
      expect(last!.length).toBe(100);
      expect((await payloads.read(digest))!.length).toBe(size);
      expect(await count(database, "mx_payload_uploads")).toBe(0);
      await expect(payloads.readChunks(uploadId, 2, 3)).rejects.toThrow(/incomplete/);
    });

    test("the same bytes uploaded again are dropped and the uploader becomes an owner", async () => {
      const digest = digestOf(2);
      await (await upload(1, digest)).finish();
      const chunksBefore = await count(database, "mx_payload_chunks");
      const again = await upload(2, digest);
      expect(await again.finish()).toEqual({ created: false });
      expect(await count(database, "mx_payload_chunks")).toBe(chunksBefore);
      expect(await count(database, "mx_payload_uploads")).toBe(0);
      expect(await payloads.isOwner(digest, 2)).toBe(true);
    });

    test("uploads of the same bytes finishing at once: exactly one is adopted, the others dropped", async () => {
      const digest = digestOf(3);
      const chunksBefore = await count(database, "mx_payload_chunks");
      const started = await Promise.all([1, 2, 3, 4].map((owner) => upload(owner, digest, 2)));
      const results = await Promise.all(started.map((u) => u.finish()));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(await count(database, "mx_payload_chunks")).toBe(chunksBefore + 2);
      expect(await count(database, "mx_payloads", "digest = ?", [digest])).toBe(1);
      expect(await count(database, "mx_payload_uploads")).toBe(0);
      for (const owner of [1, 2, 3, 4]) expect(await payloads.isOwner(digest, owner)).toBe(true);
      expect((await payloads.read(digest))!.length).toBe(PAYLOAD_CHUNK_BYTES + 100);
    });

    test("an aborted upload leaves nothing; stale unfinished uploads are purged, recent ones kept", async () => {
      const before = await count(database, "mx_payload_chunks");
      const aborted = await upload(1, digestOf(4), 70); // more than one delete batch
      await payloads.abortUpload(aborted.uploadId);
      expect(await count(database, "mx_payload_chunks")).toBe(before);
      expect(await count(database, "mx_payload_uploads")).toBe(0);

      const stale = await upload(1, digestOf(5), 2);
      const recent = await upload(1, digestOf(6), 2);
      const old = new Date(Date.now() - 48 * 3600 * 1000);
      const oldValue = dialect === "sqlite" ? old.getTime() : old.toISOString().slice(0, 19).replace("T", " ");
      if (database.dialect === "mysql") await database.pool.query("UPDATE mx_payload_uploads SET created_at = ? WHERE id = ?", [oldValue, stale.uploadId]);
      else database.sqlite.prepare("UPDATE mx_payload_uploads SET created_at = ? WHERE id = ?").run(oldValue, stale.uploadId);
      expect(await payloads.purgeStaleUploads(new Date(Date.now() - 24 * 3600 * 1000))).toBe(1);
      expect(await count(database, "mx_payload_chunks", "digest = ?", [stale.uploadId])).toBe(0);
      expect(await count(database, "mx_payload_chunks", "digest = ?", [recent.uploadId])).toBe(2);
      expect(await recent.finish()).toEqual({ created: true });
    });

    test("payloads held in memory: chunked on 1 MiB boundaries, stored once", async () => {
      const bytes = new Uint8Array(PAYLOAD_CHUNK_BYTES + 5).map((_, i) => i % 251);
      const digest = digestOf(7);
      await payloads.put({ digest, kind: "kv-cache", tensors: "{}", bytes, ownerId: 1 });
      await payloads.put({ digest, kind: "kv-cache", tensors: "{}", bytes, ownerId: 9 });
      expect(await payloads.info(digest)).toMatchObject({ size: bytes.length, chunkCount: 2, chunkKey: digest });
      expect(await count(database, "mx_payload_chunks", "digest = ?", [digest])).toBe(2);
      expect(await payloads.isOwner(digest, 9)).toBe(true);
      expect(Buffer.compare((await payloads.read(digest))!, bytes)).toBe(0);
    });

    test("the same new bytes put at once by several owners: one payload, its chunks once, every owner recorded", async () => {
      const bytes = new Uint8Array(PAYLOAD_CHUNK_BYTES + 77).map((_, i) => (i * 13) % 256);
      const digest = digestOf(10);
      const owners = [21, 22, 23, 24, 25];
      await Promise.all(owners.map((ownerId) => payloads.put({ digest, kind: "kv-cache", tensors: "{}", bytes, ownerId })));
      expect(await count(database, "mx_payloads", "digest = ?", [digest])).toBe(1);
      expect(await count(database, "mx_payload_chunks", "digest = ?", [digest])).toBe(2);
      for (const ownerId of owners) expect(await payloads.isOwner(digest, ownerId)).toBe(true);
      expect(Buffer.compare((await payloads.read(digest))!, bytes)).toBe(0);
    });

    test("a put of bytes a finished upload already holds records the owner and writes no chunk", async () => {
      const uploaded = await upload(4, digestOf(11), 2);
      await uploaded.finish();
      const chunksBefore = await count(database, "mx_payload_chunks");
      const bytes = new Uint8Array(uploaded.size);
      await payloads.put({ digest: digestOf(11), kind: "kv-cache", tensors: "{}", bytes, ownerId: 5 });
      expect(await count(database, "mx_payload_chunks")).toBe(chunksBefore);
      expect(await payloads.info(digestOf(11))).toMatchObject({ chunkKey: uploaded.uploadId, chunkCount: 2 });
      expect(await payloads.isOwner(digestOf(11), 5)).toBe(true);
    });

    test("infoWithBytes: the info, with the bytes of a one-chunk payload within the size asked, wherever its chunk is stored", async () => {
      const small = new Uint8Array(300).map((_, i) => (i * 7) % 256);
      const digest = digestOf(8);
      await payloads.put({ digest, kind: "kv-cache", tensors: '{"k":1}', bytes: small, ownerId: 1 });
      const info = await payloads.info(digest);
      const withBytes = await payloads.infoWithBytes(digest, 300);
      expect(withBytes).toMatchObject({ ...info, bytes: expect.any(Uint8Array) });
      expect(Buffer.compare(Buffer.from(withBytes!.bytes!), Buffer.from(small))).toBe(0);
      // over the size asked, several chunks, or nothing stored: the info alone
      expect(await payloads.infoWithBytes(digest, 299)).toEqual(info);
      const twoChunks = digestOf(7);
      expect(await payloads.infoWithBytes(twoChunks, 10 * PAYLOAD_CHUNK_BYTES)).toEqual(await payloads.info(twoChunks));
      expect(await payloads.infoWithBytes(digestOf(99), 1000)).toBeNull();
      // a streamed upload's one chunk lives under the upload's id, not the digest
      const uploaded = await upload(3, digestOf(9), 1);
      await uploaded.finish();
      const adopted = await payloads.infoWithBytes(digestOf(9), 1000);
      expect(adopted).toMatchObject({ chunkKey: uploaded.uploadId, size: 100, chunkCount: 1 });
      expect(Array.from(adopted!.bytes!)).toEqual(Array.from(chunk(0, 100)));
    });
  });
}

describe("payload store (sqlite, another connection writing)", () => {
  let db: MigratedTestDatabase;
  let database: Database;
  let other: Database;

  beforeAll(async () => {
    db = await openMigratedDatabase("sqlite");
    database = db.database;
    other = await openDatabase(db.testDb.config); // a second process on the same file: another instance, the CLI
  });
  afterAll(async () => {
    await other?.close();
    await db?.close();
  });

  test("a put holds the write lock from its start: a commit elsewhere cannot land between its read and its write", async () => {
    if (database.dialect !== "sqlite" || other.dialect !== "sqlite") throw new Error("sqlite only");
    const elsewhere = other.sqlite;
    elsewhere.pragma("busy_timeout = 0");
    let attempted: string | undefined;
    // `put` reads the digest, then splits the bytes into chunks: the other connection tries to commit right then.
    const bytes = new Uint8Array(10).fill(7);
    const subarray = bytes.subarray.bind(bytes);
    bytes.subarray = ((start?: number, end?: number) => {
      if (attempted === undefined) {
        try {
          elsewhere.prepare("INSERT INTO mx_payload_uploads (id, user_id) VALUES ('elsewhere', 1)").run();
          attempted = "committed";
        } catch (error) {
          attempted = (error as { code?: string }).code;
        }
      }
      return subarray(start, end);
    }) as typeof bytes.subarray;

    const { payloads } = createStore(database);
    await payloads.put({ digest: digestOf(99), bytes, kind: "kv-cache", tensors: "{}", ownerId: 1 });
    // With a deferred transaction the other commit landed and this put failed with SQLITE_BUSY_SNAPSHOT.
    expect(attempted).toBe("SQLITE_BUSY");
    expect((await payloads.info(digestOf(99)))?.size).toBe(10);
  });
});

