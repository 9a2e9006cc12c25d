import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { memoryExchanges } from "../src/db/mysql-schema.js";
import { compileRowDecoder } from "../src/store/prepared.js";

/**
 * The compiled row decoder reads MySQL TIMESTAMP text itself (digits, not V8's
 * date parser): it must give exactly what Drizzle's column decoder gives, for
 * every text a MySQL server can send, and hand anything else to Drizzle.
 */
const column = memoryExchanges.createdAt;
const decode = compileRowDecoder({ createdAt: column, priceCents: memoryExchanges.priceCents });
const drizzleTime = (text: string) => (column.mapFromDriverValue(text) as Date).getTime();
const ourTime = (text: string) => (decode([text, "1.00"]).createdAt as Date).getTime();
const pad = (n: number, width: number) => String(n).padStart(width, "0");
const mysqlText = (d: Date) =>
  `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)} ${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;

describe("compiled row decoder: MySQL timestamps", () => {
  it("decodes the column as a TIMESTAMP column type", () => {
    expect(column.columnType).toBe("MySqlTimestamp");
  });

  it("reads every TIMESTAMP/DATETIME text from year 1000 to 9999 as Drizzle does", () => {
    fc.assert(
      fc.property(fc.date({ min: new Date("1000-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }), (date) => {
        const text = mysqlText(date);
        expect(ourTime(text)).toBe(drizzleTime(text));
        expect(ourTime(text)).toBe(Math.floor(date.getTime() / 1000) * 1000);
      }),
      { numRuns: 20_000 },
    );
  });

  it("hands other forms to Drizzle's decoder, so odd values decode the same", () => {
    for (const text of [
      "0000-00-00 00:00:00",
      "2026-02-30 00:00:00",
      "2026-02-29 12:00:00",
      "2024-02-29 12:00:00",
      "2026-11-27 18:59:00.123",
      "0999-12-31 23:59:59",
      "2026-13-01 00:00:00",
      "2026-11-27 24:00:00",
      "2026-11-27T18:59:00",
      "2026-1x-27 18:59:00",
    ])
      expect(ourTime(text)).toEqual(drizzleTime(text));
  });

  it("keeps the other columns' own decoders", () => {
    expect(decode(["2026-11-27 18:59:00", "12.05"])).toEqual({ createdAt: new Date("2026-11-27T18:59:00Z"), priceCents: 1205 });
  });
});
