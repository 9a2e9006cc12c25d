import superjson from "superjson";

/**
 * tRPC's data transformer: superjson on the wire, as the client expects, with
 * a fast serializer for what procedures return.
 *
 * superjson walks every value and builds a path string for each node, which
 * costs ~300 µs for one page of 20 listings (the profile's heaviest frame on
 * `/trpc`). Our outputs are plain JSON plus Dates, so the fast path only
 * scans: it records the path of each Date, in superjson's order, and hands
 * the value itself to JSON.stringify (Date.toJSON is the same ISO string
 * superjson writes). The
 * result is exactly superjson's format (`{json, meta: {values, v: 1}}`, or
 * `{json}` when there is nothing to annotate). Anything else superjson treats
 * specially (undefined, NaN, ±Infinity, -0, BigInt, Map, Set, RegExp, class
 * instances, invalid Dates, keys superjson refuses, deep nesting) sends the
 * whole value through superjson itself. The one difference: an object or Date
 * referenced twice is not reported as a referential equality, so the client
 * gets two equal copies instead of one shared instance.
 */
const FALLBACK = Symbol("fallback");

/** superjson's path escaping (pathstringifier.escapeKey). */
const escapeKey = (key: string) => (key.includes(".") || key.includes("\\") ? key.replace(/\\/g, "\\\\").replace(/\./g, "\\.") : key);

/** superjson refuses these keys (prototype pollution); its own path throws the same error. */
const refusedKey = (key: string) => key === "__proto__" || key === "constructor" || key === "prototype";
/** Deeper than this is left to superjson, which also handles cycles. */
const MAX_DEPTH = 100;

type Annotations = Record<string, ["Date"]>;
/** What `scan` found in a value: nothing to annotate, a Date, a container's annotations, or something only superjson handles. */
type Found = undefined | typeof DATE | Annotations | typeof FALLBACK;
const DATE = Symbol("date");

/**
 * A child's findings merged into its parent's annotations the way superjson's
 * walker merges them (`index` for a Date, `index.path` for what a container
 * holds), in an object built in the same order: JavaScript then orders the
 * keys as superjson's output does (integer-like keys, a direct child's index,
 * before dotted paths).
 */
function merge(into: Annotations | undefined, key: string, found: typeof DATE | Annotations): Annotations {
  const annotations = into ?? {};
  if (found === DATE) annotations[key] = ["Date"];
  else for (const path in found) annotations[`${key}.${path}`] = found[path]!;
  return annotations;
}

function scan(value: unknown, depth: number): Found {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0) ? undefined : FALLBACK;
    case "object":
      break;
    default:
      return FALLBACK; // undefined, bigint, symbol, function
  }
  if (value === null) return undefined;
  if (depth > MAX_DEPTH) return FALLBACK;
  let annotations: Annotations | undefined;
  if (Array.isArray(value)) {
    // Tensors: long runs of numbers, checked without building paths.
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === "number") {
        if (!Number.isFinite(item) || Object.is(item, -0)) return FALLBACK;
        continue;
      }
      if (typeof item === "string" || typeof item === "boolean" || item === null) continue;
      const found = scan(item, depth + 1);
      if (found === FALLBACK) return FALLBACK;
      if (found !== undefined) annotations = merge(annotations, String(i), found);
    }
    return annotations;
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) || depth === 0 ? FALLBACK : DATE;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return FALLBACK;
  for (const key in value) {
    if (refusedKey(key)) return FALLBACK;
    const item: unknown = (value as Record<string, unknown>)[key];
    if (typeof item === "string" || typeof item === "boolean" || item === null) continue;
    const found = scan(item, depth + 1);
    if (found === FALLBACK) return FALLBACK;
    if (found !== undefined) annotations = merge(annotations, escapeKey(key), found);
  }
  return annotations;
}

export function serializeForWire(value: unknown): { json: unknown; meta?: { values: Annotations; v: 1 } } {
  const found = scan(value, 0);
  if (found === FALLBACK || found === DATE) return superjson.serialize(value) as ReturnType<typeof serializeForWire>;
  return found === undefined ? { json: value } : { json: value, meta: { values: found, v: 1 } };
}

/** Inputs are small: superjson reads them. Outputs take the fast path above. */
export const wireTransformer = {
  input: superjson,
  output: { serialize: serializeForWire, deserialize: (data: unknown) => superjson.deserialize(data as never) },
};
