import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createAlignmentStore } from "../src/alignment/create-alignment-store.js";
import type { AlignmentStore } from "../src/alignment/alignment-store.js";
import { migrate } from "../src/db/migrate.js";
import { openDatabase, type Database } from "../src/db/open-database.js";
import { createTestDatabase, testDialects, type TestDatabase } from "./support/databases.js";
import { newMatrix as matrix } from "./support/matrices.js";

/** Sets a row's creation time directly (another writer, a clock step): ordering must follow it, not the id. */
async function setCreatedAt(database: Database, id: number, at: Date): Promise<void> {
  if (database.dialect === "mysql") await database.pool.query("UPDATE mx_alignment_matrices SET created_at = ? WHERE id = ?", [at, id]);
  else database.sqlite.prepare("UPDATE mx_alignment_matrices SET created_at = ? WHERE id = ?").run(at.getTime(), id);
}

/** The alignment registry and result cache: one contract, both dialects. */
for (const dialect of await testDialects()) {
  describe(`alignment store contract (${dialect})`, () => {
    let testDb: TestDatabase;
    let database: Database;
    let store: AlignmentStore;

    beforeEach(async () => {
      testDb = await createTestDatabase(dialect);
      database = await openDatabase(testDb.config);
      await migrate(database);
      store = createAlignmentStore(database);
    });
    afterEach(async () => {
      await database.close();
      await testDb.drop();
    });

    test("inserts, finds and lists matrices newest first, filtered by pair and status", async () => {
      const a = await store.insertMatrix(matrix({ version: "1.0.0", description: "first" }));
      const b = await store.insertMatrix(matrix({ dtype: "bfloat16" }));
      const other = await store.insertMatrix(matrix({ targetModel: "mistral-7b" }));
      expect(await store.findMatrix(a)).toEqual({ ...matrix({ version: "1.0.0", description: "first" }), id: a, status: "active", createdAt: expect.any(Date) });
      expect(await store.findMatrix(999_999)).toBeNull();

      const all = await store.listMatrices({ limit: 10, offset: 0 });
      expect(all.map((m) => m.id)).toEqual([other, b, a]);
      expect((await store.listMatrices({ targetModel: "gpt-4", limit: 10, offset: 0 })).map((m) => m.id)).toEqual([b, a]);
      expect((await store.listMatrices({ sourceModel: "llama-3-8b", targetModel: "gpt-4", limit: 1, offset: 1 })).map((m) => m.id)).toEqual([a]);

      await store.setMatrixStatus(b, "inactive");
      expect((await store.listMatrices({ status: "active", limit: 10, offset: 0 })).map((m) => m.id)).toEqual([other, a]);
      expect((await store.listMatrices({ status: "inactive", limit: 10, offset: 0 })).map((m) => m.id)).toEqual([b]);
    });

    test("the newest active matrix of a pair: creation time first, the id breaks ties, inactive ones never", async () => {
      expect(await store.newestActiveMatrix("llama-3-8b", "gpt-4")).toBeNull();
      const older = await store.insertMatrix(matrix());
      const newer = await store.insertMatrix(matrix());
      expect((await store.newestActiveMatrix("llama-3-8b", "gpt-4"))?.id).toBe(newer);

      // ids are not assumed to follow time: the row created later wins whatever its id
      await setCreatedAt(database, older, new Date(Date.now() + 60_000));
      expect((await store.newestActiveMatrix("llama-3-8b", "gpt-4"))?.id).toBe(older);
      await store.setMatrixStatus(older, "inactive");
      expect((await store.newestActiveMatrix("llama-3-8b", "gpt-4"))?.id).toBe(newer);
      expect(await store.newestActiveMatrix("gpt-4", "llama-3-8b")).toBeNull();
      await store.setMatrixStatus(newer, "inactive");
      expect(await store.newestActiveMatrix("llama-3-8b", "gpt-4")).toBeNull();
    });

    test("the aligned-result cache keeps the first result of a (payload, matrix) pair", async () => {
      const row = { sourceDigest: "d".repeat(64), matrixId: 3, alignedDigest: "e".repeat(64), metrics: '{"flops":1}', refusal: null };
      expect(await store.findAlignedPayload(row.sourceDigest, 3)).toBeNull();
      await store.recordAlignedPayload(row);
      await store.recordAlignedPayload({ ...row, alignedDigest: "f".repeat(64) });
      expect(await store.findAlignedPayload(row.sourceDigest, 3)).toEqual(row);
      expect(await store.findAlignedPayload(row.sourceDigest, 4)).toBeNull();

      const refusal = { ...row, matrixId: 4, alignedDigest: null, refusal: "overflows" };
      await store.recordAlignedPayload(refusal);
      expect(await store.findAlignedPayload(row.sourceDigest, 4)).toEqual(refusal);
    });
  });
}
