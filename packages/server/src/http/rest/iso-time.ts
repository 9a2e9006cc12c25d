const DAY_MS = 86_400_000;
/** 10000-01-01T00:00:00.000Z: past it, `toISOString` writes a six-digit year with a sign. */
const YEAR_10000_MS = 253_402_300_800_000;
const DAYS_KEPT = 4096;

const days = new Map<number, string>();
const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * `date.toISOString()`, byte for byte, at a fraction of its cost. The builtin
 * formats in C++ through the runtime (~0.5 µs a call); a page of 20 listings
 * spent ~10 µs there, a third of its REST mapping. Here the date part comes
 * from a small per-day cache and the time of day is integer arithmetic.
 * Times before 1970 or past year 9999, and invalid dates (which throw), go to
 * the builtin.
 */
export function toIsoString(date: Date): string {
  const time = date.getTime();
  if (!(time >= 0 && time < YEAR_10000_MS)) return date.toISOString();
  const day = Math.floor(time / DAY_MS);
  let prefix = days.get(day);
  if (prefix === undefined) {
    if (days.size >= DAYS_KEPT) days.clear();
    prefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    days.set(day, prefix);
  }
  const ms = time - day * DAY_MS;
  const seconds = Math.floor(ms / 1000);
  return `${prefix}${pad2(Math.floor(seconds / 3600))}:${pad2(Math.floor(seconds / 60) % 60)}:${pad2(seconds % 60)}.${pad3(ms % 1000)}Z`;
}
