import parseRange from "range-parser";

/**
 * What a `Range` request header asks of a payload of `size` bytes (RFC 9110
 * §14). One byte range is served as 206; a header this server does not serve
 * (another unit, several ranges, bad syntax) is ignored, as the RFC allows, and
 * the whole payload is sent; a range wholly past the end is unsatisfiable (416).
 */
export type ByteRange = { kind: "whole" } | { kind: "partial"; start: number; end: number } | { kind: "unsatisfiable" };

export function parseByteRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return { kind: "whole" };
  // range-parser refuses a suffix longer than the file; RFC 9110 §14.1.2 says it means the whole file.
  const suffix = /^\s*bytes\s*=\s*-\s*(\d+)\s*$/i.exec(header);
  if (suffix && Number(suffix[1]) >= size && size > 0) return { kind: "partial", start: 0, end: size - 1 };
  const ranges = parseRange(size, header, { combine: true });
  if (ranges === -1) return { kind: "unsatisfiable" };
  if (ranges === -2 || ranges.type !== "bytes" || ranges.length !== 1) return { kind: "whole" };
  const [range] = ranges;
  return { kind: "partial", start: range!.start, end: range!.end };
}
