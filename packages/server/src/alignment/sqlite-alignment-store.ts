import type { Dtype, MatrixStatus } from "@memory-exchange/shared";
import { and, eq, sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import type { SqliteDatabase } from "../db/open-database.js";
import { lazy } from "../store/prepared.js";
import { matrixConditions, newestFirst, type AlignmentStore, type MatrixRow } from "./alignment-store.js";

const now = sql`(cast(unixepoch('subsec') * 1000 as integer))`;

/** Migration 0006_alignment_matrices creates these (db/migrations/sqlite.ts). */
export const alignmentMatrices = sqliteTable(
  "mx_alignment_matrices",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    sourceModel: text("source_model").notNull(),
    targetModel: text("target_model").notNull(),
    sourceDim: integer("source_dim").notNull(),
    targetDim: integer("target_dim").notNull(),
    dtype: text("dtype").notNull(),
    digest: text("matrix_digest").notNull(),
    version: text("version"),
    description: text("description"),
    status: text("status").notNull().default("active"),
    publisherId: integer("publisher_id").notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(now),
  },
  (t) => [index("mx_alignment_pair_idx").on(t.sourceModel, t.targetModel, t.status, t.createdAt, t.id)],
);

export const alignedPayloads = sqliteTable(
  "mx_aligned_payloads",
  {
    sourceDigest: text("source_digest").notNull(),
    matrixId: integer("matrix_id").notNull(),
    alignedDigest: text("aligned_digest"),
    metrics: text("metrics").notNull(),
    refusal: text("refusal"),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull().default(now),
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

export function createSqliteAlignmentStore(database: SqliteDatabase): AlignmentStore {
  const { db } = database;
  const t = alignmentMatrices;
  const a = alignedPayloads;
  const ph = sql.placeholder;

  // The statements of purchase and use (and of aligned downloads), prepared once (store/prepared.ts).
  // Their values are strings and integers: nothing a column encoder would change. No LIMIT: `get`
  // reads one row anyway, and a bound `LIMIT ?` (all Drizzle emits) made the lookup ~5x slower.
  const matrixById = lazy(() => db.select(matrixColumns).from(t).where(eq(t.id, ph("id"))).prepare());
  const newestActive = lazy(() =>
    db
      .select(matrixColumns)
      .from(t)
      .where(matrixConditions(t, { sourceModel: ph("sourceModel"), targetModel: ph("targetModel"), status: "active" }))
      .orderBy(...newestFirst(t))
      .prepare(),
  );
  const alignedPayload = lazy(() =>
    db
      .select({ sourceDigest: a.sourceDigest, matrixId: a.matrixId, alignedDigest: a.alignedDigest, metrics: a.metrics, refusal: a.refusal })
      .from(a)
      .where(and(eq(a.sourceDigest, ph("sourceDigest")), eq(a.matrixId, ph("matrixId"))))
      .prepare(),
  );
  const alignedPayloadOf = lazy(() =>
    db
      .select({ matrixId: a.matrixId })
      .from(a)
      .where(and(eq(a.sourceDigest, ph("sourceDigest")), eq(a.alignedDigest, ph("alignedDigest"))))
      .prepare(),
  );
  const insertAlignedPayload = lazy(() =>
    db
      .insert(a)
      .values({ sourceDigest: ph("sourceDigest"), matrixId: ph("matrixId"), alignedDigest: ph("alignedDigest"), metrics: ph("metrics"), refusal: ph("refusal") })
      .onConflictDoNothing()
      .prepare(),
  );

  return {
    async insertMatrix(matrix) {
      return Number(db.insert(t).values(matrix).run().lastInsertRowid);
    },
    async findMatrix(id) {
      const row = matrixById().get({ id });
      return row ? toMatrix(row) : null;
    },
    async listMatrices(filter) {
      const rows = db
        .select(matrixColumns)
        .from(t)
        .where(matrixConditions(t, filter))
        .orderBy(...newestFirst(t))
        .limit(filter.limit)
        .offset(filter.offset)
        .all();
      return rows.map(toMatrix);
    },
    async newestActiveMatrix(sourceModel, targetModel) {
      const row = newestActive().get({ sourceModel, targetModel });
      return row ? toMatrix(row) : null;
    },
    async setMatrixStatus(id, status) {
      db.update(t).set({ status }).where(eq(t.id, id)).run();
    },
    async findAlignedPayload(sourceDigest, matrixId) {
      return alignedPayload().get({ sourceDigest, matrixId }) ?? null;
    },
    async isAlignedPayloadOf(sourceDigest, alignedDigest) {
      return alignedPayloadOf().get({ sourceDigest, alignedDigest }) !== undefined;
    },
    async recordAlignedPayload(row) {
      insertAlignedPayload().run({ ...row });
    },
  };
}
