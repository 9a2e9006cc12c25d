import type { Dtype, MatrixStatus } from "@memory-exchange/shared";
import { and, eq, sql } from "drizzle-orm";
import { char, index, int, mysqlTable, primaryKey, text, timestamp, varchar } from "drizzle-orm/mysql-core";
import type { MysqlDatabase } from "../db/open-database.js";
import { lazy } from "../store/prepared.js";
import { matrixConditions, newestFirst, type AlignmentStore, type MatrixRow } from "./alignment-store.js";

/** Migration 0006_alignment_matrices creates these (db/migrations/mysql.ts). */
export const alignmentMatrices = mysqlTable(
  "mx_alignment_matrices",
  {
    id: int("id").autoincrement().primaryKey(),
    sourceModel: varchar("source_model", { length: 50 }).notNull(),
    targetModel: varchar("target_model", { length: 50 }).notNull(),
    sourceDim: int("source_dim").notNull(),
    targetDim: int("target_dim").notNull(),
    dtype: varchar("dtype", { length: 10 }).notNull(),
    digest: char("matrix_digest", { length: 64 }).notNull(),
    version: varchar("version", { length: 20 }),
    description: text("description"),
    status: varchar("status", { length: 10 }).notNull().default("active"),
    publisherId: int("publisher_id").notNull(),
    createdAt: timestamp("created_at", { mode: "date" }).notNull().defaultNow(),
  },
  (t) => [index("mx_alignment_pair_idx").on(t.sourceModel, t.targetModel, t.status, t.createdAt, t.id)],
);

export const alignedPayloads = mysqlTable(
  "mx_aligned_payloads",
  {
    sourceDigest: char("source_digest", { length: 64 }).notNull(),
    matrixId: int("matrix_id").notNull(),
    alignedDigest: char("aligned_digest", { length: 64 }),
    metrics: text("metrics").notNull(),
    refusal: text("refusal"),
    createdAt: timestamp("created_at", { mode: "date" }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.sourceDigest, t.matrixId] })],
);

const matrixColumns = {
  id: alignmentMatrices.id,
  sourceModel: alignmentMatrices.sourceModel,
  targetModel: alignmentMatrices.targetModel,
  sourceDim: alignmentMatrices.sourceDim,
  targetDim: alignmentMatrices.targetDim,
  dtype: alignmentMatrices.dtype,
  digest: alignmentMatrices.digest,
  version: alignmentMatrices.version,
  description: alignmentMatrices.description,
  status: alignmentMatrices.status,
  publisherId: alignmentMatrices.publisherId,
  createdAt: alignmentMatrices.createdAt,
};

type Row = Omit<MatrixRow, "dtype" | "status"> & { dtype: string; status: string };
const toMatrix = (row: Row): MatrixRow => ({ ...row, dtype: row.dtype as Dtype, status: row.status as MatrixStatus });

type InsertResult = [{ insertId: number }, unknown];

export function createMysqlAlignmentStore(database: MysqlDatabase): AlignmentStore {
  const { db } = database;
  const t = alignmentMatrices;
  const a = alignedPayloads;
  const ph = sql.placeholder;

  // The statements of purchase and use (and of aligned downloads), built once (store/prepared.ts).
  // Their values are strings and integers: nothing a column encoder would change.
  const matrixById = lazy(() => db.select(matrixColumns).from(t).where(eq(t.id, ph("id"))).limit(1).prepare());
  const newestActive = lazy(() =>
    db
      .select(matrixColumns)
      .from(t)
      .where(matrixConditions(t, { sourceModel: ph("sourceModel"), targetModel: ph("targetModel"), status: "active" }))
      .orderBy(...newestFirst(t))
      .limit(1)
      .prepare(),
  );
  const alignedPayload = lazy(() =>
    db
      .select({ sourceDigest: a.sourceDigest, matrixId: a.matrixId, alignedDigest: a.alignedDigest, metrics: a.metrics, refusal: a.refusal })
      .from(a)
      .where(and(eq(a.sourceDigest, ph("sourceDigest")), eq(a.matrixId, ph("matrixId"))))
      .limit(1)
      .prepare(),
  );
  const alignedPayloadOf = lazy(() =>
    db
      .select({ matrixId: a.matrixId })
      .from(a)
      .where(and(eq(a.sourceDigest, ph("sourceDigest")), eq(a.alignedDigest, ph("alignedDigest"))))
      .limit(1)
      .prepare(),
  );
  // Portable "insert if absent": a no-op update on the duplicate key (no INSERT IGNORE, which also hides other errors).
  const insertAlignedPayload = lazy(() =>
    db
      .insert(a)
      .values({ sourceDigest: ph("sourceDigest"), matrixId: ph("matrixId"), alignedDigest: ph("alignedDigest"), metrics: ph("metrics"), refusal: ph("refusal") })
      .onDuplicateKeyUpdate({ set: { matrixId: sql`matrix_id` } })
      .prepare(),
  );

  return {
    async insertMatrix(matrix) {
      const [result] = (await db.insert(t).values(matrix)) as unknown as InsertResult;
      return result.insertId;
    },
    async findMatrix(id) {
      const [row] = await matrixById().execute({ id });
      return row ? toMatrix(row) : null;
    },
    async listMatrices(filter) {
      const rows = await db
        .select(matrixColumns)
        .from(t)
        .where(matrixConditions(t, filter))
        .orderBy(...newestFirst(t))
        .limit(filter.limit)
        .offset(filter.offset);
      return rows.map(toMatrix);
    },
    async newestActiveMatrix(sourceModel, targetModel) {
      const [row] = await newestActive().execute({ sourceModel, targetModel });
      return row ? toMatrix(row) : null;
    },
    async setMatrixStatus(id, status) {
      await db.update(t).set({ status }).where(eq(t.id, id));
    },
    async findAlignedPayload(sourceDigest, matrixId) {
      const [row] = await alignedPayload().execute({ sourceDigest, matrixId });
      return row ?? null;
    },
    async isAlignedPayloadOf(sourceDigest, alignedDigest) {
      return (await alignedPayloadOf().execute({ sourceDigest, alignedDigest })).length > 0;
    },
    async recordAlignedPayload(row) {
      await insertAlignedPayload().execute({ ...row });
    },
  };
}
