import { invalidInput } from "../errors.js";
import type { Cursor } from "../store/store.js";

/** Opaque keyset cursor: the (createdAt, id) of the last row of a page. */
export function encodeCursor(row: { createdAt: Date; id: number }): string {
  return Buffer.from(`${row.createdAt.getTime()}.${row.id}`).toString("base64url");
}

export function decodeCursor(cursor: string): Cursor {
  const match = /^(\d{1,15})\.(\d{1,10})$/.exec(Buffer.from(cursor, "base64url").toString());
  if (!match) throw invalidInput("cursor", "is not a cursor returned by this service");
  return { createdAt: new Date(Number(match[1])), id: Number(match[2]) };
}

export function nextCursor<T extends { createdAt: Date; id: number }>(rows: T[], limit: number): string | null {
  const last = rows[rows.length - 1];
  return rows.length === limit && last ? encodeCursor(last) : null;
}
