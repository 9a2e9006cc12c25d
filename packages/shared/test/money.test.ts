import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { centsToDecimalString, decimalStringToCents } from "../src/money.js";

/** Reference: the text's digits as a BigInt, scaled to hundredths (truncating past two decimals). BigInt has no -0: results are compared plus 0. */
function referenceCents(text: string): number {
  const match = /^(-?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match) throw new Error("not a decimal");
  const [, sign, whole = "", fraction = ""] = match;
  const cents = BigInt(whole || "0") * 100n + BigInt((fraction + "00").slice(0, 2));
  return Number(sign === "-" ? -cents : cents);
}

const digits = (min: number, max: number) => fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: min, maxLength: max });

describe("decimalStringToCents", () => {
  it("reads a DECIMAL column's text exactly, from 0 to 13 integer digits", () => {
    fc.assert(
      fc.property(fc.boolean(), digits(1, 13), digits(2, 2), (negative, whole, fraction) => {
        const text = `${negative ? "-" : ""}${whole}.${fraction}`;
        expect(decimalStringToCents(text) + 0).toBe(referenceCents(text));
      }),
      { numRuns: 5000 },
    );
  });

  it("round-trips every cents value through centsToDecimalString", () => {
    fc.assert(
      fc.property(fc.integer({ min: -99_999_999_999, max: 99_999_999_999 }), (cents) => {
        expect(decimalStringToCents(centsToDecimalString(cents))).toBe(cents);
      }),
      { numRuns: 5000 },
    );
  });

  it("reads the other decimal forms as before", () => {
    for (const text of ["3", "12.5", ".5", "-0.07", " 1.50 ", "7.", "0.123", "12345678901234.56", "-"]) expect(decimalStringToCents(text) + 0).toBe(referenceCents(text));
    fc.assert(
      fc.property(fc.constantFrom("", "-"), digits(0, 16), fc.option(digits(0, 4)), (sign, whole, fraction) => {
        const text = `${sign}${whole}${fraction === null ? "" : `.${fraction}`}`;
        expect(decimalStringToCents(text) + 0).toBe(referenceCents(text));
      }),
      { numRuns: 5000 },
    );
  });

  it("rejects text that is not a decimal", () => {
    for (const text of ["1e5", "1.2.3", "abc", "1,50", "--1.00", "1.0a", "+1.00", "１.00"]) expect(() => decimalStringToCents(text)).toThrow(/not a decimal/);
  });
});
