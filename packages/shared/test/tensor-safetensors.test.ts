import { describe, expect, test } from "vitest";
import {
  decodeSafetensors,
  encodeFromFloat64,
  encodeSafetensors,
  readSafetensorsHeader,
  SAFETENSORS_MAX_HEADER_BYTES,
  SafetensorsError,
  safetensorsTotalSize,
} from "../src/tensor/index.js";

/** A file built by hand: u64 LE header length, the header bytes as given (no padding added), data. */
function handBuilt(header: string | Uint8Array, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32 = (...v: number[]): Uint8Array => encodeFromFloat64("float32", new Float64Array(v));

function expectHeaderError(file: Uint8Array, message: string): void {
  const r = readSafetensorsHeader(file);
  expect(r.ok).toBe(false);
  if (r.ok || !("error" in r)) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  expect(r.error).toContain(message);
  expect(() => decodeSafetensors(file)).toThrow(SafetensorsError);
}

describe("encodeSafetensors", () => {
  test("layout: u64 LE header length, space-padded JSON header, 8-byte aligned data, relative offsets", () => {
    const file = encodeSafetensors(
      { b: { dtype: "float64", shape: [1], data: encodeFromFloat64("float64", new Float64Array([2])) }, a: { dtype: "float32", shape: [2], data: f32(1, 3) } },
      { k: "v" },
    );
    const dv = new DataView(file.buffer);
    const n = Number(dv.getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const headerText = new TextDecoder().decode(file.subarray(8, 8 + n));
    const json =
      '{"__metadata__":{"k":"v"},' +
      '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"b":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}';
    expect(headerText.trimEnd()).toBe(json);
    expect(headerText.slice(json.length)).toMatch(/^ *$/);
    expect(headerText.length - json.length).toBeLessThan(8);
    expect(file.length).toBe(8 + n + 16);
    expect(dv.getFloat32(8 + n, true)).toBe(1);
    expect(dv.getFloat32(8 + n + 4, true)).toBe(3);
    expect(dv.getFloat64(8 + n + 8, true)).toBe(2);
  });

  test("matches a hand-built file byte for byte", () => {
    const header = '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes → 2 spaces of padding
    expect(encodeSafetensors({ x: { dtype: "float32", shape: [2], data: f32(0.5, -1) } })).toEqual(
      handBuilt(`${header}  `, f32(0.5, -1)),
    );
  });

  test("deterministic: tensor and metadata insertion order do not matter", () => {
    const x = { dtype: "float32" as const, shape: [1], data: f32(1) };
    const y = { dtype: "float16" as const, shape: [2], data: new Uint8Array([0, 0x3c, 0, 0x40]) };
    const one = encodeSafetensors({ x, y }, { a: "1", b: "2" });
    const two = encodeSafetensors({ y, x }, { b: "2", a: "1" });
    expect(one).toEqual(two);
  });

  test("rejects data that does not match shape × dtype", () => {
    expect(() => encodeSafetensors({ x: { dtype: "float32", shape: [3], data: f32(1, 2) } })).toThrow(/needs 12 bytes, got 8/);
  });
});

describe("readSafetensorsHeader", () => {
  test("reads a hand-built, unpadded header with metadata and unsorted offsets", () => {
    const header = JSON.stringify({
      __metadata__: { format: "pt" },
      w: { dtype: "BF16", shape: [2, 1], data_offsets: [4, 8] },
      v: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
    });
    const data = new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f, 0x00, 0x40]);
    const file = handBuilt(header, data);
    const r = readSafetensorsHeader(file);
    expect(r).toMatchObject({
      ok: true,
      headerLength: header.length,
      dataStart: 8 + header.length,
      metadata: { format: "pt" },
      tensors: {
        w: { dtype: "bfloat16", shape: [2, 1], begin: 4, end: 8 },
        v: { dtype: "float16", shape: [2], begin: 0, end: 4 },
      },
    });
    if (r.ok) expect(safetensorsTotalSize(r)).toBe(file.length);
    const decoded = decodeSafetensors(file);
    expect(Array.from(decoded.tensors.v!.data)).toEqual([0x00, 0x3c, 0x00, 0xc0]);
    expect(Array.from(decoded.tensors.w!.data)).toEqual([0x80, 0x3f, 0x00, 0x40]);
    expect(decoded.metadata).toEqual({ format: "pt" });
  });

  test("streaming: asks for the 8-byte length, then the whole header, then parses", () => {
    const file = encodeSafetensors({ t: { dtype: "float32", shape: [4], data: f32(1, 2, 3, 4) } });
    const n = Number(new DataView(file.buffer).getBigUint64(0, true));
    expect(readSafetensorsHeader(file.subarray(0, 0))).toEqual({ ok: false, needBytes: 8 });
    expect(readSafetensorsHeader(file.subarray(0, 7))).toEqual({ ok: false, needBytes: 8 });
    expect(readSafetensorsHeader(file.subarray(0, 8))).toEqual({ ok: false, needBytes: 8 + n });
    expect(readSafetensorsHeader(file.subarray(0, 8 + n - 1))).toEqual({ ok: false, needBytes: 8 + n });
    const r = readSafetensorsHeader(file.subarray(0, 8 + n)); // no data bytes needed
    expect(r).toMatchObject({ ok: true, dataStart: 8 + n });
    if (r.ok) expect(safetensorsTotalSize(r)).toBe(file.length);
  });

  test("works on a prefix that is not aligned in its buffer", () => {
    const file = encodeSafetensors({ t: { dtype: "float32", shape: [1], data: f32(1) } });
    const host = new Uint8Array(file.length + 3);
    host.set(file, 3);
    expect(decodeSafetensors(host.subarray(3)).tensors.t!.data).toEqual(f32(1));
  });

  test("zero-size tensors are allowed by the format", () => {
    const header = JSON.stringify({
      e: { dtype: "F32", shape: [0, 3], data_offsets: [0, 0] },
      t: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
    });
    expect(decodeSafetensors(handBuilt(header, f32(7))).tensors.e!.data.length).toBe(0);
  });

  test("an empty file holds no tensors", () => {
    const r = readSafetensorsHeader(handBuilt("{}"));
    expect(r).toMatchObject({ ok: true, tensors: {}, metadata: {} });
  });

  const t = (dtype: string, shape: number[], offsets: number[]) => ({ dtype, shape, data_offsets: offsets });

  test.each<[string, string, number, string]>([
    ["bad JSON", '{"a": {', 0, "header is not valid JSON"],
    ["not an object", "[1, 2]", 0, 'starting with "{"'],
    ["leading whitespace", ' {"a":1}', 0, 'starting with "{"'],
    ["unknown dtype", JSON.stringify({ q: t("I8", [4], [0, 4]) }), 4, 'tensor "q" has unsupported dtype "I8"'],
    ["float8 dtype", JSON.stringify({ q: t("F8_E4M3", [4], [0, 4]) }), 4, "unsupported dtype"],
    ["overlapping offsets", JSON.stringify({ a: t("F32", [2], [0, 8]), b: t("F32", [2], [4, 12]) }), 12, 'tensor "b" overlaps'],
    ["a hole", JSON.stringify({ a: t("F32", [1], [0, 4]), b: t("F32", [1], [8, 12]) }), 12, 'tensor "b" leaves a hole'],
    ["not starting at 0", JSON.stringify({ a: t("F32", [1], [4, 8]) }), 8, "leaves a hole"],
    ["shape × size ≠ offsets", JSON.stringify({ a: t("F32", [3], [0, 8]) }), 8, "needs 12 bytes but data_offsets [0, 8] hold 8"],
    ["end before begin", JSON.stringify({ a: t("F32", [0], [8, 0]) }), 8, "end before they begin"],
    ["negative dimension", JSON.stringify({ a: t("F32", [-1], [0, 0]) }), 0, "shape must be an array of non-negative integers"],
    ["bad offsets", JSON.stringify({ a: t("F32", [1], [0]) }), 4, "data_offsets must be [begin, end]"],
    ["unknown field", JSON.stringify({ a: { ...t("F32", [1], [0, 4]), extra: 1 } }), 4, 'unknown field "extra"'],
    ["missing dtype", JSON.stringify({ a: { shape: [1], data_offsets: [0, 4] } }), 4, "missing its dtype"],
    ["tensor not an object", JSON.stringify({ a: 3 }), 0, 'tensor "a" must be an object'],
    ["metadata not strings", JSON.stringify({ __metadata__: { n: 1 } }), 0, '"__metadata__" entry "n" must be a string'],
  ])("rejects %s", (_name, header, dataBytes, message) => {
    expectHeaderError(handBuilt(header, new Uint8Array(dataBytes)), message);
  });

  test("rejects a header length over 100 MiB without waiting for it", () => {
    const file = new Uint8Array(16);
    new DataView(file.buffer).setBigUint64(0, BigInt(SAFETENSORS_MAX_HEADER_BYTES + 1), true);
    expectHeaderError(file, "exceeds the limit");
    new DataView(file.buffer).setBigUint64(0, 2n ** 40n, true);
    expectHeaderError(file, "exceeds the limit");
  });

  test("rejects invalid UTF-8 and a byte-order mark", () => {
    expectHeaderError(handBuilt(new Uint8Array([0x7b, 0xff, 0x7d])), "not valid UTF-8");
    expectHeaderError(handBuilt(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])), 'starting with "{"');
  });

  test("decodeSafetensors rejects truncated files and trailing bytes", () => {
    const file = encodeSafetensors({ t: { dtype: "float32", shape: [2], data: f32(1, 2) } });
    expect(() => decodeSafetensors(file.subarray(0, 5))).toThrow(/truncated: its header needs 8 bytes/);
    expect(() => decodeSafetensors(file.subarray(0, 20))).toThrow(/truncated: its header needs/);
    expect(() => decodeSafetensors(file.subarray(0, file.length - 1))).toThrow(/truncated: the header describes/);
    const longer = new Uint8Array(file.length + 2);
    longer.set(file);
    expect(() => decodeSafetensors(longer)).toThrow(/2 bytes after the last tensor/);
  });

  test("a tensor named __proto__ stays a plain entry", () => {
    const raw = '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    const decoded = decodeSafetensors(handBuilt(raw, f32(5)));
    expect(Object.keys(decoded.tensors)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(decoded.tensors)).toBeNull();
  });
});
