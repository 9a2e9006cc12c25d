import { describe, expect, it } from "vitest";
import { compileInputMapper, compileOutputConverter, restPath } from "../packages/server/src/http/rest/case-mapping.js";
import { procedureSchemas } from "../packages/server/src/http/rest/procedure-schemas.js";
import { restOperations } from "../packages/server/src/http/rest/rest-operations.js";
import { toIsoString } from "../packages/server/src/http/rest/iso-time.js";

describe("schema-driven snake_case mapping", () => {
  it("renames declared object keys (also inside arrays and unions) and never a payload's own keys", () => {
    const toRest = compileOutputConverter(procedureSchemas("memory.purchase").output);
    const createdAt = new Date("2026-01-02T03:04:05.678Z");
    const payload = { sourceModel: "m", keys: [[1]], values: [[2]], metadata: { tokenCount: 1, deep: { camelCase: [{ innerKey: 1 }] } } };
    const out = toRest({
      transactionId: 7,
      newPurchase: true,
      // an undeclared key: a validated output never has one (Zod strips it); a closed object's converter reads declared keys only
      memory: { id: 1, sellerId: 2, createdAt, kvCacheData: payload, notDeclared: 1 },
      alignment: { applied: true, matrixId: 3, sourceDim: 4, metrics: { keys: { vectors: 2, zeroVectors: 0 } } },
    });
    expect(out).toEqual({
      transaction_id: 7,
      new_purchase: true,
      memory: { id: 1, seller_id: 2, created_at: "2026-01-02T03:04:05.678Z", kv_cache_data: payload },
      // union members are merged
      alignment: { applied: true, matrix_id: 3, source_dim: 4, metrics: { keys: { vectors: 2, zero_vectors: 0 } } },
    });
    expect((out as { memory: { kv_cache_data: unknown } }).memory.kv_cache_data).toBe(payload);

    const browse = compileOutputConverter(procedureSchemas("reasoningChain.browse").output);
    expect(browse({ chains: [{ pricePerUse: 1, inputExample: { someKey: 1 } }], count: 1, nextCursor: null })).toEqual({
      chains: [{ price_per_use: 1, input_example: { someKey: 1 } }],
      count: 1,
      next_cursor: null,
    });
  });

  it("a closed object's generated converter reads declared keys only, leaves undefined fields out of the JSON and refuses __proto__", () => {
    const schema = {
      type: "object",
      additionalProperties: false,
      properties: { sellerId: { type: "integer" }, createdAt: { type: "string", format: "date-time" }, note: { type: "string" } },
    };
    const toRest = compileOutputConverter(schema);
    const createdAt = new Date("2026-01-02T03:04:05.678Z");
    expect(JSON.stringify(toRest({ sellerId: 1, createdAt, extra: 2 }))).toBe('{"seller_id":1,"created_at":"2026-01-02T03:04:05.678Z"}');
    expect(JSON.stringify(toRest({ sellerId: 1, createdAt: undefined, note: "n" }))).toBe('{"seller_id":1,"note":"n"}');
    // keys are quoted, not pasted into the generated code
    const quoted = compileOutputConverter({ type: "object", additionalProperties: false, properties: { 'a"b': { type: "string" } } });
    expect(quoted({ 'a"b': "x" })).toEqual({ 'a"b': "x" });
    expect(() => compileOutputConverter({ type: "object", additionalProperties: false, properties: { ["__proto__"]: { type: "string" } } })).toThrow(
      /__proto__/,
    );
  });

  it("maps body keys (snake or camel) and coerces query strings by the input schema's types", () => {
    const publish = compileInputMapper(procedureSchemas("memory.publish").input);
    const kv = { sourceModel: "m", some_key: { innerCamel: 1 } };
    expect(publish.fromBody({ memory_type: "kv_cache", kv_cache_data: kv, price: 1, extra_field: 1 })).toEqual({
      memoryType: "kv_cache",
      kvCacheData: kv,
      price: 1,
      extra_field: 1,
    });
    expect(publish.fromBody({ memoryType: "a", memory_type: "b" })).toEqual({ memoryType: "b" });
    expect(publish.fromBody({ memory_type: "b", memoryType: "a" })).toEqual({ memoryType: "b" });
    expect(publish.fromBody([1])).toEqual([1]);

    const browse = compileInputMapper(procedureSchemas("memory.browse").input);
    expect(
      browse.fromQuery({ memory_type: "kv_cache", min_price: "5", max_price: "1e2", limit: "20", source_model: "123", cursor: "42", junk: "x" }),
    ).toEqual({ memoryType: "kv_cache", minPrice: 5, maxPrice: 100, limit: 20, sourceModel: "123", cursor: "42" });
    // not a number: left as text for the procedure's schema to reject with its own message
    expect(browse.fromQuery({ limit: "ten", min_price: "0x10", offset: "" })).toEqual({ limit: "ten", minPrice: "0x10", offset: "" });

    const chains = restOperations().find((op) => op.route.procedure === "reasoningChain.browse")!;
    expect(chains.input.fromQuery({ chain_type: "finance" })).toEqual({ category: "finance" });
    expect(chains.input.fromQuery({ chain_type: "finance", category: "law" })).toEqual({ category: "law" });
    const detail = restOperations().find((op) => op.route.procedure === "memory.get")!;
    expect(detail.input.fromQuery({ id: "12" })).toEqual({ memoryId: 12 });
    expect(detail.input.restName("memoryId")).toBe("id");
  });

  it("spells error paths the REST way", () => {
    const name = (field: string) => ({ kvCacheData: "kv_cache_data", pricePerUse: "price_per_use" })[field] ?? field;
    expect(restPath("kvCacheData.keys.0.1", name)).toBe("kv_cache_data.keys[0][1]");
    expect(restPath("kvCacheData.metadata.tokenCount", name)).toBe("kv_cache_data.metadata.tokenCount");
    expect(restPath("pricePerUse", name)).toBe("price_per_use");
    expect(restPath("(input)", name)).toBe("(input)");
  });

  it("compiles every route of the table against its procedure", () => {
    for (const op of restOperations()) {
      expect(op.schemas.output.type, op.route.operationId).toBe("object");
      expect(op.schemas.type).toBe(op.route.method === "GET" ? "query" : "mutation");
    }
  });
});

describe("toIsoString", () => {
  const same = (time: number) => expect(toIsoString(new Date(time))).toBe(new Date(time).toISOString());

  it("writes what Date#toISOString writes, across the range it formats itself and at its edges", () => {
    const edges = [
      0, 1, 999, 1000, 86_399_999, 86_400_000, Date.UTC(2000, 1, 29, 23, 59, 59, 999), Date.UTC(2024, 1, 29, 12), Date.UTC(2100, 2, 1),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    ];
    for (const time of edges) same(time);
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 20_000; i++) same(Math.floor(random() * Date.UTC(9999, 11, 31)));
    // the same day again, from its cache
    for (let i = 0; i < 100; i++) same(Date.UTC(2026, 10, 27) + i * 12_345);
  });

  it("leaves dates before 1970, past year 9999 and invalid dates to the builtin", () => {
    for (const time of [-1, Date.UTC(1969, 11, 31, 23, 59, 59), Date.UTC(-50, 0, 1), Date.UTC(10000, 0, 1), 8.64e15]) same(time);
    expect(() => toIsoString(new Date(NaN))).toThrow(RangeError);
  });
});
