import { fillPlaceholders, sql, type Column, type Query } from "drizzle-orm";
import type { Pool } from "mysql2/promise";
import { executeValues, type Queryable } from "./mysql-transaction.js";
import type { Cursor } from "./store.js";

/**
 * Prepared statements for the stores. Drizzle rebuilds a query's SQL on
 * every call (and better-sqlite3 recompiles it): in the bench profile of a
 * purchase, query building and sqlite3_prepare took over half the CPU.
 * Statements are built on first use (so a store can be created before the
 * migrations ran) and reused with placeholder values.
 *
 * Placeholders in conditions bypass Drizzle's column encoders: callers pass
 * driver values (`column.mapToDriverValue(…)`) for dates and money.
 */
export function lazy<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= build());
}

interface Filter {
  limit: number;
  offset: number;
  after?: Cursor;
}

/** Which optional filters are present: browse pages get one statement per combination. */
export function filterShape(filter: Filter): string {
  let shape = "";
  for (const name in filter)
    if ((filter as unknown as Record<string, unknown>)[name] !== undefined && name !== "limit" && name !== "offset") shape += `${name},`;
  return shape;
}

/** The filter with each present value replaced by a placeholder of its name (the cursor by `afterCreatedAt`, `afterId`). */
export function placeholderFilter<F extends Filter>(filter: F): F {
  const out: Record<string, unknown> = {};
  for (const name in filter) {
    if ((filter as unknown as Record<string, unknown>)[name] === undefined) continue;
    out[name] = name === "after" ? { createdAt: sql.placeholder("afterCreatedAt"), id: sql.placeholder("afterId") } : sql.placeholder(name);
  }
  return out as F;
}

/**
 * A LIMIT written into SQLite's SQL as an integer literal. Drizzle binds
 * limits as parameters, and SQLite (built with STAT4, as better-sqlite3 is)
 * re-plans a statement on every run when a bound value can change its plan,
 * which a LIMIT over an ordered index scan does: a 20-row browse page took
 * ~200 µs with `LIMIT ?` against ~100 µs with `LIMIT 20`.
 */
export function sqliteLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new Error(`not a row count: ${limit}`);
  // Drizzle writes an SQL chunk given as the limit verbatim.
  return sql.raw(String(limit)) as unknown as number;
}

/** One statement per key (a filter shape), built on first use. */
export class StatementCache<S> {
  private readonly statements = new Map<string, S>();
  get(key: string, build: () => S): S {
    let statement = this.statements.get(key);
    if (!statement) this.statements.set(key, (statement = build()));
    return statement;
  }
}

/**
 * A decoder from driver rows (value arrays, in selection order) to row
 * objects, compiled once from a flat selection with each column's own
 * `mapFromDriverValue`. Drizzle's generic per-row mapping re-inspects every
 * field of every row: ~45 µs of a 20-row browse page (a quarter of its query).
 */
type DecodedRow<Selection extends Record<string, Column>> = {
  [K in keyof Selection]: Selection[K]["_"]["notNull"] extends true ? Selection[K]["_"]["data"] : Selection[K]["_"]["data"] | null;
};

export function compileRowDecoder<Selection extends Record<string, Column>>(selection: Selection): (values: unknown[]) => DecodedRow<Selection> {
  const names = Object.keys(selection);
  const decoders = names.map((name): ((value: unknown) => unknown) => {
    const column = selection[name]!;
    return column.columnType === "MySqlTimestamp" ? (value) => mysqlTimestampToDate(value, column) : (value) => column.mapFromDriverValue(value);
  });
  return (values) => {
    const row: Record<string, unknown> = {};
    for (let i = 0; i < names.length; i++) {
      const value = values[i];
      row[names[i]!] = value === null || value === undefined ? null : decoders[i]!(value);
    }
    return row as DecodedRow<Selection>;
  };
}

const digitsAt = (text: string, from: number, count: number): number => {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return NaN;
    n = n * 10 + digit;
  }
  return n;
};

/**
 * A MySQL TIMESTAMP read as text in UTC ("2026-11-27 18:59:00", the pool's
 * `dateStrings`) to a Date. Drizzle's own decoder parses `value + "+0000"`
 * with V8's legacy date parser, ~0.4 µs a value (8 µs of a 20-row page);
 * reading the digits takes ~0.16 µs. Any other form (fractional seconds,
 * zero dates, a year before 1000, a day past its month's end) goes to
 * Drizzle's decoder, so the result is always the same.
 */
function mysqlTimestampToDate(value: unknown, column: Column): unknown {
  const text = value as string;
  if (typeof text === "string" && text.length === 19 && text[4] === "-" && text[7] === "-" && text[10] === " " && text[13] === ":" && text[16] === ":") {
    const year = digitsAt(text, 0, 4);
    const month = digitsAt(text, 5, 2);
    const day = digitsAt(text, 8, 2);
    const hour = digitsAt(text, 11, 2);
    const minute = digitsAt(text, 14, 2);
    const second = digitsAt(text, 17, 2);
    if (year >= 1000 && month >= 1 && month <= 12 && day >= 1 && hour <= 23 && minute <= 59 && second <= 59) {
      const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
      if (date.getUTCDate() === day) return date;
    }
  }
  return column.mapFromDriverValue(value);
}

/**
 * A MySQL select (built once, with placeholders) returning value arrays,
 * decoded by `compileRowDecoder`. Drizzle's prepared `execute` passes mysql2 a
 * per-field typeCast callback (redundant here: the pool already reads dates
 * as strings) and maps rows generically; together ~150 µs CPU of a 20-row
 * browse page.
 *
 * `protocol` chooses how mysql2 sends it:
 * - `prepared` (mysql2 `execute`, prepared once per connection): the server
 *   skips parsing. For single-row reads, whose parse is most of their cost.
 *   Values are bound by `executeValues` (LIMIT and OFFSET as text).
 * - `text` (mysql2 `query`): for pages. mysql2 decodes the binary protocol's
 *   DATETIME field by field, so a 20-row page costs the client more than the
 *   parse saves the server (README, Performance).
 */
export function mysqlSelectRows<Selection extends Record<string, Column>>(
  pool: Pool,
  query: { toSQL(): Query },
  selection: Selection,
  protocol: "prepared" | "text" = "prepared",
): (values: Record<string, unknown>, on?: Queryable) => Promise<DecodedRow<Selection>[]> {
  const { sql: text, params } = query.toSQL();
  const decode = compileRowDecoder(selection);
  // the trailing `limit ?` / `limit ? offset ?` placeholders
  const rowCountPlaceholders = (/ limit \?(?: offset \?)?$/i.exec(text)?.[0].match(/\?/g) ?? []).length;
  const firstAsText = params.length - rowCountPlaceholders;
  const run =
    protocol === "text"
      ? (values: Record<string, unknown>, on: Queryable) => on.query({ sql: text, rowsAsArray: true }, fillPlaceholders(params, values))
      : (values: Record<string, unknown>, on: Queryable) => on.execute({ sql: text, rowsAsArray: true }, executeValues(params, values, firstAsText));
  // `on`: a transaction's connection instead of the pool
  return async (values, on = pool) => {
    const [rows] = await run(values, on);
    return (rows as unknown[][]).map(decode);
  };
}
