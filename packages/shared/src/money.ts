import { z } from "zod";

/** Largest value of a DECIMAL(10,2) column, in cents. */
export const MAX_PRICE_CENTS = 9_999_999_999;

/**
 * Converts a wire amount (a number with at most 2 decimals) to integer cents,
 * or returns null when it has more precision than cents.
 */
export function toCents(amount: number): number | null {
  if (!Number.isFinite(amount)) return null;
  const cents = Math.round(amount * 100);
  // 9.99 * 100 = 998.9999999999999: accept float noise, reject real sub-cent digits.
  if (Math.abs(cents - amount * 100) > 1e-6 * Math.max(1, Math.abs(amount))) return null;
  return cents;
}

/** Integer cents to the wire number (at most 2 decimals). */
export function fromCents(cents: number): number {
  return cents / 100;
}

/** Integer cents to the exact decimal text a DECIMAL column takes ("-12.05"). */
export function centsToDecimalString(cents: number): string {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  return `${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

/**
 * Exact DECIMAL text ("12.5", "-0.07", "3") to integer cents, without float arithmetic.
 * The form a DECIMAL(p,2) column is read in ("-12.05": up to 13 integer digits,
 * two decimals) is read digit by digit: it is decoded for every money field of
 * every row (the general pattern below took ~0.25 µs a value, 5 µs of a
 * 20-row page).
 */
export function decimalStringToCents(text: string): number {
  const fast = columnDecimalToCents(text);
  if (fast !== undefined) return fast;
  const match = /^(-?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match) throw new Error(`not a decimal: ${text}`);
  const [, sign, whole = "", fraction = ""] = match;
  const cents = Number(whole || "0") * 100 + Number((fraction + "00").slice(0, 2));
  return sign === "-" ? -cents : cents;
}

/** `-?\d{1,13}\.\d\d` to cents, or undefined for any other text. */
function columnDecimalToCents(text: string): number | undefined {
  const length = text.length;
  const negative = text.charCodeAt(0) === 45; // "-"
  const start = negative ? 1 : 0;
  const point = length - 3;
  if (point <= start || point - start > 13 || text.charCodeAt(point) !== 46) return undefined; // "."
  let cents = 0;
  for (let i = start; i < length; i++) {
    if (i === point) continue;
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    cents = cents * 10 + digit;
  }
  return negative ? -cents : cents;
}

/** A price on the wire: > 0, at most 2 decimals, fits DECIMAL(10,2). */
export const priceSchema = z
  .number({ error: "must be a number" })
  .refine((n) => Number.isFinite(n), "must be a finite number")
  .refine((n) => n > 0, "must be greater than 0")
  .refine((n) => toCents(n) !== null, "must have at most 2 decimal places")
  .refine((n) => (toCents(n) ?? 0) <= MAX_PRICE_CENTS, "must be at most 99999999.99");

/** A price filter: >= 0, any precision (filters compare, they are not stored). */
export const priceFilterSchema = z
  .number({ error: "must be a number" })
  .refine((n) => Number.isFinite(n) && n >= 0, "must be a non-negative number");
