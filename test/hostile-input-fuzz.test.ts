import * as fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkErrorResponse } from "./support/error-shape.js";
import { kvCache } from "./support/fixtures.js";
import { rawRequest, type RawResponse } from "./support/raw-http.js";
import { tableCounts } from "./support/rows.js";
import { startTestServer, testDialects, type TestServer } from "./support/server.js";

/**
 * Property-based fuzz (fast-check): random and near-valid JSON thrown at
 * publish / purchase / use, over tRPC (with superjson meta) and REST, on a
 * real server and database. For every request: the status is 2xx or 4xx,
 * a failure is a well-formed envelope with a code from the closed set and no
 * internal text, a 4xx wrote no row, and the process answers /health after.
 * MX_FUZZ_RUNS overrides the number of runs per target.
 */
const RUNS = Number(process.env.MX_FUZZ_RUNS ?? 150);
/** Business tables: what a 4xx must never change. */
const TABLES = ["memory_exchanges", "reasoning_chains", "mx_payloads", "mx_payload_chunks", "mx_payload_owners"];
// Numbers JSON cannot spell: sent as literals that parse to ±Infinity.
const INF = "__MX_INF__";
const NEG_INF = "__MX_NEG_INF__";

interface FuzzRequest {
  path: string;
  body: unknown;
  contentType: string | null;
  /** cut the body text at this fraction (malformed JSON) */
  truncateAt: number | null;
  headers: Record<string, string>;
}

/** null most of the time, `arbitrary` one time in `odds`. */
const rarely = <T>(arbitrary: fc.Arbitrary<T>, odds: number) =>
  fc.oneof({ weight: odds - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });

const hostileNumber = fc.oneof(
  fc.double({ noNaN: false }),
  fc.integer(),
  fc.constantFrom(0, -0, -1, 0.5, 1.005, 0.001, 99_999_999.99, 100_000_000, 2 ** 31, 2 ** 53 + 1, 1e308, INF, NEG_INF),
);
const price = fc.oneof(fc.integer({ min: 1, max: 99_999_999_99 }).map((c) => c / 100), hostileNumber);
const hostileString = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "grapheme", maxLength: 60 }),
  fc.string({ minLength: 49, maxLength: 52 }),
  fc.string({ minLength: 254, maxLength: 257 }),
  fc.constantFrom("", " ", "\u0000", "é".repeat(51), "😀".repeat(26), "'; DROP TABLE memory_exchanges; --", "__proto__", "constructor", "x".repeat(10_001)),
);
const modelName = fc.oneof(fc.constantFrom("llama-3-8b", "gpt-4", "mistral-7b"), hostileString);
const anyJson = fc.jsonValue({ maxDepth: 4 });

/** Rank 1–4 rectangular tensors of finite numbers, most of them valid. */
const tensor = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 4 }).chain((rank) =>
    fc.array(fc.integer({ min: 1, max: 3 }), { minLength: rank, maxLength: rank }).chain((shape) => {
      const build = (dims: number[]): fc.Arbitrary<unknown> =>
        dims.length === 1
          ? fc.array(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), { minLength: dims[0]!, maxLength: dims[0]! })
          : fc.array(build(dims.slice(1)), { minLength: dims[0]!, maxLength: dims[0]! });
      return build(shape);
    }),
  ) },
  { weight: 1, arbitrary: fc.array(fc.array(fc.oneof(fc.double(), fc.string(), fc.constant(null), fc.constant(INF)), { maxLength: 3 }), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.record({ dtype: fc.constantFrom("float16", "bfloat16", "float32", "float64", "int8"), shape: fc.array(hostileNumber, { maxLength: 5 }), data: fc.oneof(fc.base64String({ maxLength: 64 }), fc.string()) }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.constantFrom([], [[]], [[[[[1]]]]], { dtype: "float32", shape: [100_000, 100_000], data: "AAAA" }) },
  { weight: 1, arbitrary: anyJson },
);

const kvCacheData = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(modelName, tensor, rarely(anyJson, 3)).map(([sourceModel, t, metadata]) => ({ sourceModel, keys: t, values: t, ...(metadata === null ? {} : { metadata }) })) },
  { weight: 2, arbitrary: fc.record({ sourceModel: modelName, keys: tensor, values: tensor, metadata: anyJson }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.constant(kvCache()) },
  { weight: 1, arbitrary: anyJson },
);

const publishInput = fc.oneof(
  { weight: 2, arbitrary: fc.nat({ max: 9 }).map((i) => ({ memoryType: "kv_cache", kvCacheData: kvCache("llama-3-8b", i), price: 1 + i / 100 })) },
  { weight: 6, arbitrary: fc.record(
    {
      memoryType: fc.oneof(fc.constantFrom("kv_cache", "reasoning_chain", "long_term_memory"), hostileString, hostileNumber),
      kvCacheData,
      price,
      description: fc.oneof(hostileString, anyJson),
    },
    { requiredKeys: ["memoryType", "kvCacheData", "price"] },
  ) },
  { weight: 1, arbitrary: anyJson },
);

const idValue = (existing: () => number[]) =>
  fc.oneof(fc.nat({ max: 5 }).map((i) => existing()[i % existing().length]!), hostileNumber, fc.string({ maxLength: 12 }), anyJson);

const purchaseInput = (existing: () => number[]) =>
  fc.oneof(
    // a valid request as is: keeps successes in every run, so the fuzz never exercises only the parser
    { weight: 2, arbitrary: fc.nat({ max: 5 }).map((i) => ({ memoryId: existing()[i % existing().length]!, targetModel: "llama-3-8b" })) },
    { weight: 6, arbitrary: fc.record({ memoryId: idValue(existing), targetModel: modelName }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: anyJson },
  );

const useInput = (existing: () => number[]) =>
  fc.oneof(
    { weight: 2, arbitrary: fc.nat({ max: 5 }).map((i) => ({ chainId: existing()[i % existing().length]!, inputData: { query: "q" }, targetModel: "gpt-4" })) },
    { weight: 6, arbitrary: fc.record(
      {
        chainId: idValue(existing),
        inputData: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), anyJson, { maxKeys: 5 }), anyJson, fc.constant({ pad: "x".repeat(70_000) })),
        targetModel: modelName,
      },
      { requiredKeys: [] },
    ) },
    { weight: 1, arbitrary: anyJson },
  );

const toSnake = (value: unknown): unknown =>
  value && typeof value === "object" && !Array.isArray(value)
    ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]))
    : value;

/** superjson annotations an attacker may send along with the JSON. */
const superjsonMeta = rarely(
  fc.record({
    values: fc.dictionary(
      fc.constantFrom("memoryId", "chainId", "price", "targetModel", "inputData", "kvCacheData", "kvCacheData.keys", "__proto__", "a.b.c"),
      fc.constantFrom(["undefined"], ["number"], ["bigint"], ["Date"], ["set"], ["map"], ["regexp"], [["class", "X"]], [["custom", "Y"]], ["Error"], 5, null),
      { maxKeys: 2 },
    ),
  }),
  4,
);

function fuzzRequest(target: "memory.publish" | "memory.purchase" | "reasoningChain.use", input: fc.Arbitrary<unknown>, transport: "trpc" | "rest"): fc.Arbitrary<FuzzRequest> {
  const restPath = { "memory.publish": "/api/v1/memory/publish", "memory.purchase": "/api/v1/memory/purchase", "reasoningChain.use": "/api/v1/reasoning-chain/use" }[target];
  return fc
    .record({
      input,
      meta: superjsonMeta,
      contentType: fc.oneof({ weight: 12, arbitrary: fc.constant("application/json") }, { weight: 1, arbitrary: fc.constantFrom("text/plain", null, "application/json; charset=utf-16") }),
      truncateAt: rarely(fc.double({ min: 0, max: 1, noNaN: true }), 10),
      idempotencyKey: rarely(fc.oneof(fc.constantFrom("k1", "k2", "k3"), fc.string({ maxLength: 300 })), 5),
      actAs: rarely(fc.constantFrom("2", "abc", "0"), 12),
    })
    .map(({ input, meta, contentType, truncateAt, idempotencyKey, actAs }) => ({
      path: transport === "trpc" ? `/trpc/${target}` : restPath,
      body: transport === "trpc" ? { json: input, ...(meta ? { meta } : {}) } : toSnake(input),
      contentType,
      truncateAt,
      headers: {
        ...(idempotencyKey !== null && /^[\x20-\x7e]*$/.test(idempotencyKey) ? { "idempotency-key": idempotencyKey } : {}),
        ...(actAs !== null ? { "x-user-id": actAs } : {}),
      },
    }));
}

function encode(request: FuzzRequest): string {
  let text = JSON.stringify(request.body) ?? "null";
  text = text.replaceAll(`"${INF}"`, "1e400").replaceAll(`"${NEG_INF}"`, "-1e400");
  if (request.truncateAt !== null) text = text.slice(0, Math.floor(text.length * request.truncateAt));
  return text;
}

for (const dialect of await testDialects()) {
  describe(`hostile input fuzz (${dialect})`, () => {
    let s: TestServer;
    let key: string;
    let memoryIds: number[] = [];
    let chainIds: number[] = [];

    beforeAll(async () => {
      s = await startTestServer(dialect);
      key = await s.createKey(500);
      const seller = await s.client(501);
      for (let i = 0; i < 3; i++) {
        memoryIds.push((await seller.memory.publish.mutate({ memoryType: "kv_cache", kvCacheData: kvCache("llama-3-8b", i), price: 1 + i })).memoryId);
        chainIds.push(
          (
            await seller.reasoningChain.publish.mutate({
              chainName: `fuzz ${i}`,
              description: "fuzz target",
              category: "fuzz",
              kvCacheSnapshot: kvCache("llama-3-8b", 10 + i),
              sourceModel: "llama-3-8b",
              pricePerUse: 0.5,
            })
          ).chainId,
        );
      }
      memoryIds = [...memoryIds, 999_999];
      chainIds = [...chainIds, 999_999];
    });
    afterAll(() => s?.close());

    async function send(request: FuzzRequest): Promise<{ response: RawResponse; wroteRows: boolean }> {
      const before = await tableCounts(s.server, TABLES);
      const headers: Record<string, string> = { authorization: `Bearer ${key}`, ...request.headers };
      if (request.contentType) headers["content-type"] = request.contentType;
      const response = await rawRequest(`${s.url}${request.path}`, { method: "POST", headers, body: encode(request) });
      const after = await tableCounts(s.server, TABLES);
      return { response, wroteRows: JSON.stringify(before) !== JSON.stringify(after) };
    }

    const targets = [
      ["memory.publish", () => publishInput],
      ["memory.purchase", () => purchaseInput(() => memoryIds)],
      ["reasoningChain.use", () => useInput(() => chainIds)],
    ] as const;
    for (const transport of ["trpc", "rest"] as const) {
      for (const [target, input] of targets) {
        it(`${transport} ${target}: only 2xx/4xx, well-formed envelopes, no row written by a 4xx`, async () => {
          const statuses = new Map<number, number>();
          await fc.assert(
            fc.asyncProperty(fuzzRequest(target, input(), transport), async (request) => {
              const { response, wroteRows } = await send(request);
              statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
              const context = `${response.status} ${response.text.slice(0, 300)}`;
              expect(response.status >= 200 && response.status < 500, context).toBe(true);
              if (response.status >= 400) {
                checkErrorResponse(response);
                expect(wroteRows, `a ${response.status} wrote rows: ${context}`).toBe(false);
              }
            }),
            { numRuns: RUNS },
          );
          // The process is alive and still serving.
          expect((await rawRequest(`${s.url}/health`)).status).toBe(200);
          // Near-valid inputs must reach success sometimes, or the fuzz only exercises the parser.
          const successes = [...statuses].filter(([status]) => status < 300).reduce((n, [, count]) => n + count, 0);
          expect(successes, JSON.stringify([...statuses])).toBeGreaterThan(0);
        });
      }
    }
  });
}
