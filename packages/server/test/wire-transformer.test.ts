import fc from "fast-check";
import superjson from "superjson";
import { describe, expect, test } from "vitest";
import { serializeForWire } from "../src/trpc/wire-transformer.js";

/** What the client receives: the response text, read back by superjson. */
const overTheWire = (value: unknown) => JSON.parse(JSON.stringify(serializeForWire(value))) as Parameters<typeof superjson.deserialize>[0];

describe("tRPC wire transformer (superjson format, fast path)", () => {
  test("sends exactly what superjson sends, for any value without shared references", () => {
    fc.assert(
      fc.property(fc.anything({ withDate: true, withMap: true, withSet: true, withBigInt: true, withNullPrototype: true, withSparseArray: true }), (value) => {
        const outcome = (serialize: (v: unknown) => unknown) => {
          try {
            return JSON.stringify(serialize(value));
          } catch (error) {
            return `threw ${(error as Error).message}`;
          }
        };
        expect(outcome(serializeForWire)).toBe(outcome((v) => superjson.serialize(v)));
      }),
      { numRuns: 2000 },
    );
  });

  test("annotations come in superjson's order: a child's own Date (an integer-like key) before a deeper one", () => {
    // fast-check's counterexample (seed 1316403239): the deeper Date was listed first.
    for (const value of [[[[new Date(0)], new Date(0)]], { a: [{ b: new Date(0) }, new Date(1)], 7: new Date(2), "x.y": [new Date(3)] }]) {
      expect(JSON.stringify(serializeForWire(value))).toBe(JSON.stringify(superjson.serialize(value)));
    }
  });

  test("a listing page: Dates come back as Dates, keys with dots escaped as superjson does", () => {
    const page = {
      memories: [
        { id: 1, price: 9.99, createdAt: new Date("2026-01-02T03:04:05.678Z"), "odd.key": { at: new Date(0) } },
        { id: 2, price: 1, createdAt: new Date("2026-01-01T00:00:00.000Z") },
      ],
      count: 2,
      nextCursor: null,
    };
    expect(serializeForWire(page).meta?.values).toEqual({
      "memories.0.createdAt": ["Date"],
      "memories.0.odd\\.key.at": ["Date"],
      "memories.1.createdAt": ["Date"],
    });
    expect(superjson.deserialize(overTheWire(page))).toEqual(page);
  });

  test("plain JSON has no meta; tensors with -0 or non-finite numbers take superjson's own path", () => {
    expect(serializeForWire({ keys: [[0.5, 1], [2, 3]] })).toEqual({ json: { keys: [[0.5, 1], [2, 3]] } });
    const signed = { keys: [[0.5, -0]] };
    expect(serializeForWire(signed)).toEqual(superjson.serialize(signed));
    expect(Object.is((superjson.deserialize(overTheWire(signed)) as typeof signed).keys[0]![1], -0)).toBe(true);
  });
});
