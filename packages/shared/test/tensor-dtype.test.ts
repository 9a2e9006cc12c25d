import { execFileSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import {
  allFinite,
  bfloat16BitsToNumber,
  decodeToFloat32,
  decodeToFloat64,
  dtypeByteSize,
  dtypeFromSafetensors,
  dtypeToSafetensors,
  DTYPES,
  encodeFromFloat32,
  encodeFromFloat64,
  float16BitsToNumber,
  numberToBfloat16Bits,
  numberToFloat16Bits,
} from "../src/tensor/index.js";

/** Deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hasNumpy(): boolean {
  try {
    execFileSync("python3", ["-c", "import numpy"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Place `bytes` at an odd offset inside a larger buffer, to exercise unaligned input. */
function unaligned(bytes: Uint8Array): Uint8Array {
  const host = new Uint8Array(bytes.length + 3);
  host.set(bytes, 1);
  return host.subarray(1, 1 + bytes.length);
}

describe("dtype names and sizes", () => {
  test("byte sizes", () => {
    expect(DTYPES.map(dtypeByteSize)).toEqual([2, 2, 4, 8]);
  });
  test("safetensors names map both ways", () => {
    expect(DTYPES.map(dtypeToSafetensors)).toEqual(["F16", "BF16", "F32", "F64"]);
    expect(["F16", "BF16", "F32", "F64"].map(dtypeFromSafetensors)).toEqual([...DTYPES]);
    expect(dtypeFromSafetensors("I8")).toBeUndefined();
    expect(dtypeFromSafetensors("f16")).toBeUndefined();
    expect(dtypeFromSafetensors("toString")).toBeUndefined();
  });
});

describe("float16 scalar conversion", () => {
  test.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -24 * 1023, 0x03ff], // largest subnormal
    [0, 0x0000],
    [-0, 0x8000],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [1 / 3, 0x3555],
  ])("%d → %i", (x, bits) => {
    expect(numberToFloat16Bits(x)).toBe(bits);
  });

  test("overflow rounds to infinity at the halfway point 65520, not below", () => {
    expect(numberToFloat16Bits(65519.99)).toBe(0x7bff);
    expect(numberToFloat16Bits(65520)).toBe(0x7c00);
    expect(numberToFloat16Bits(-70000)).toBe(0xfc00);
    expect(numberToFloat16Bits(1e300)).toBe(0x7c00);
  });

  test("round half to even", () => {
    // 1 + 2^-11 is halfway between 1 (even mantissa) and 1 + 2^-10: stays 1.
    expect(numberToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3·2^-11 is halfway between 0x3c01 (odd) and 0x3c02 (even): goes up.
    expect(numberToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // Just above the halfway point rounds up.
    expect(numberToFloat16Bits(1 + 2 ** -11 + 2 ** -30)).toBe(0x3c01);
    // Subnormal ties: 2^-25 (half of the smallest subnormal) → 0; 3·2^-25 → 2 (even).
    expect(numberToFloat16Bits(2 ** -25)).toBe(0x0000);
    expect(numberToFloat16Bits(3 * 2 ** -25)).toBe(0x0002);
    expect(numberToFloat16Bits(2 ** -25 + 2 ** -40)).toBe(0x0001);
    // Rounding up out of the subnormal range lands on the smallest normal.
    expect(numberToFloat16Bits(2 ** -14 - 2 ** -26)).toBe(0x0400);
    // Rounding a mantissa of all ones carries into the exponent.
    expect(numberToFloat16Bits(2 - 2 ** -12)).toBe(0x4000);
  });

  test("no double rounding through float32", () => {
    // 1 + 2^-11 + 2^-40 rounds to 1 + 2^-11 in float32 (a tie in float16 that would go to 1);
    // rounding once from the double must go up.
    const x = 1 + 2 ** -11 + 2 ** -40;
    expect(Math.fround(x)).toBe(1 + 2 ** -11);
    expect(numberToFloat16Bits(x)).toBe(0x3c01);
    expect(encodeFromFloat64("float16", new Float64Array([x]))).toEqual(new Uint8Array([0x01, 0x3c]));
  });

  test("bits to number", () => {
    expect(float16BitsToNumber(0x3c00)).toBe(1);
    expect(float16BitsToNumber(0x7bff)).toBe(65504);
    expect(float16BitsToNumber(0x0001)).toBe(2 ** -24);
    expect(float16BitsToNumber(0x8000)).toBe(-0);
    expect(float16BitsToNumber(0xfc00)).toBe(-Infinity);
    expect(float16BitsToNumber(0x7e00)).toBeNaN();
    expect(float16BitsToNumber(0x7c01)).toBeNaN();
  });

  test("every finite bit pattern survives bits → number → bits", () => {
    const wrong: number[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      const exp = (bits >>> 10) & 0x1f;
      if (exp === 0x1f && (bits & 0x3ff) !== 0) continue; // NaN payloads are not preserved
      if (numberToFloat16Bits(float16BitsToNumber(bits)) !== bits) wrong.push(bits);
    }
    expect(wrong).toEqual([]);
  });

  test("rounding picks the nearest float16 (ties to even) for random doubles", () => {
    const next = rng(1);
    const wrong: number[] = [];
    for (let i = 0; i < 20000; i++) {
      // Short mantissas (1..16 bits) make exact ties common; exponents span subnormals to 2^14.
      const width = 1 + Math.floor(next() * 16);
      const x = Math.round((next() - 0.5) * 2 ** width) * 2 ** (Math.floor(next() * 40) - 40);
      const bits = numberToFloat16Bits(x);
      const v = float16BitsToNumber(bits);
      if (!Number.isFinite(v)) {
        if (Math.abs(x) < 65520) wrong.push(x);
        continue;
      }
      const up = float16BitsToNumber(bits + 1);
      const down = float16BitsToNumber(bits === 0 || bits === 0x8000 ? bits : bits - 1);
      const err = Math.abs(x - v);
      const nearest = err <= Math.abs(x - up) && err <= Math.abs(x - down);
      const tie = err !== 0 && (err === Math.abs(x - up) || err === Math.abs(x - down));
      if (!nearest || (tie && (bits & 1) === 1)) wrong.push(x);
    }
    expect(wrong).toEqual([]);
  });
});

describe("bfloat16 scalar conversion", () => {
  test.each([
    [1, 0x3f80],
    [-1, 0xbf80],
    [0.5, 0x3f00],
    [3.140625, 0x4049],
    [0, 0x0000],
    [-0, 0x8000],
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [2 ** -126, 0x0080], // smallest normal
    [2 ** -133, 0x0001], // smallest subnormal
    [3.3895313892515355e38, 0x7f7f], // largest finite
  ])("%d → %i", (x, bits) => {
    expect(numberToBfloat16Bits(x)).toBe(bits);
  });

  test("round half to even and overflow", () => {
    expect(numberToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie, even stays
    expect(numberToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie, odd goes up
    expect(numberToBfloat16Bits(1 + 2 ** -8 + 2 ** -40)).toBe(0x3f81);
    expect(numberToBfloat16Bits(2 ** -134)).toBe(0x0000); // subnormal tie → 0
    expect(numberToBfloat16Bits(3 * 2 ** -134)).toBe(0x0002);
    // Halfway between the largest finite (odd mantissa) and 2^128 → infinity.
    expect(numberToBfloat16Bits((2 - 2 ** -8) * 2 ** 127)).toBe(0x7f80);
    expect(numberToBfloat16Bits((2 - 2 ** -8) * 2 ** 127 * (1 - 2 ** -20))).toBe(0x7f7f);
    expect(numberToBfloat16Bits(1e300)).toBe(0x7f80);
    expect(numberToBfloat16Bits(NaN) & 0x7fff).toBeGreaterThan(0x7f80);
  });

  test("bits to number and back for every finite pattern", () => {
    expect(bfloat16BitsToNumber(0x3f80)).toBe(1);
    expect(bfloat16BitsToNumber(0x0001)).toBe(2 ** -133);
    expect(bfloat16BitsToNumber(0x7fc0)).toBeNaN();
    const wrong: number[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      if (((bits >>> 7) & 0xff) === 0xff && (bits & 0x7f) !== 0) continue;
      if (numberToBfloat16Bits(bfloat16BitsToNumber(bits)) !== bits) wrong.push(bits);
    }
    expect(wrong).toEqual([]);
  });

  test("bfloat16 is the upper half of the float32 pattern when exact", () => {
    const f = new Float32Array([1.5, -2.75, 1e-40]);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < f.length; i++) {
      if ((u[i]! & 0xffff) === 0) expect(numberToBfloat16Bits(f[i]!)).toBe(u[i]! >>> 16);
    }
  });
});

describe("array conversions", () => {
  const next = rng(7);
  const sample = new Float32Array(4096);
  for (let i = 0; i < sample.length; i++) sample[i] = (next() - 0.5) * 2 ** Math.floor(next() * 40 - 30);
  sample.set([0, -0, 65504, 65520, 1e-8, 2 ** -24, 3 * 2 ** -25, 1 + 2 ** -11, -1e30], 0);

  test("float32 → float16/bfloat16 bit path agrees with the scalar double path", () => {
    const h = encodeFromFloat32("float16", sample);
    const b = encodeFromFloat32("bfloat16", sample);
    const hd = new DataView(h.buffer);
    const bd = new DataView(b.buffer);
    for (let i = 0; i < sample.length; i++) {
      expect(hd.getUint16(2 * i, true)).toBe(numberToFloat16Bits(sample[i]!));
      expect(bd.getUint16(2 * i, true)).toBe(numberToBfloat16Bits(sample[i]!));
    }
  });

  test.each(DTYPES)("%s encode → decode round trip, unaligned input", (dtype) => {
    const bytes = encodeFromFloat32(dtype, sample);
    expect(bytes.length).toBe(sample.length * dtypeByteSize(dtype));
    const back32 = decodeToFloat32(dtype, unaligned(bytes));
    const back64 = decodeToFloat64(dtype, unaligned(bytes));
    // Re-encoding what was decoded reproduces the bytes exactly.
    expect(encodeFromFloat32(dtype, back32)).toEqual(bytes);
    expect(encodeFromFloat64(dtype, back64)).toEqual(bytes);
    if (dtype === "float32" || dtype === "float64") expect(back32).toEqual(sample);
  });

  test("decoding reads little-endian bytes", () => {
    expect(decodeToFloat64("float16", new Uint8Array([0x00, 0x3c, 0xff, 0x7b]))).toEqual(new Float64Array([1, 65504]));
    expect(decodeToFloat64("bfloat16", new Uint8Array([0x80, 0x3f]))).toEqual(new Float64Array([1]));
    expect(decodeToFloat64("float32", new Uint8Array([0, 0, 0x80, 0x3f]))).toEqual(new Float64Array([1]));
    expect(decodeToFloat64("float64", new Uint8Array([0, 0, 0, 0, 0, 0, 0xf0, 0x3f]))).toEqual(new Float64Array([1]));
  });

  test("decoded arrays are copies, not views of the input", () => {
    const bytes = encodeFromFloat64("float64", new Float64Array([1, 2]));
    const out = decodeToFloat64("float64", bytes);
    bytes.fill(0);
    expect(out).toEqual(new Float64Array([1, 2]));
  });

  test("a byte length that is not a whole number of elements is rejected", () => {
    expect(() => decodeToFloat32("float32", new Uint8Array(6))).toThrow(RangeError);
    expect(() => allFinite("float64", new Uint8Array(7))).toThrow(RangeError);
  });

  test("float64 → float32 narrowing rounds to nearest", () => {
    const bytes = encodeFromFloat64("float32", new Float64Array([0.1]));
    expect(decodeToFloat64("float32", bytes)[0]).toBe(Math.fround(0.1));
  });
});

describe("allFinite", () => {
  test.each(DTYPES)("%s: finds NaN/±Infinity at their index, also unaligned", (dtype) => {
    const values = new Float64Array(257).map((_, i) => (i - 128) / 7);
    expect(allFinite(dtype, unaligned(encodeFromFloat64(dtype, values)))).toEqual({ ok: true });
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const at of [0, 100, 256]) {
        const v = values.slice();
        v[at] = bad;
        expect(allFinite(dtype, unaligned(encodeFromFloat64(dtype, v)))).toEqual({ ok: false, index: at });
      }
    }
  });

  test("largest finite values and overflow", () => {
    expect(allFinite("float16", new Uint8Array([0xff, 0x7b]))).toEqual({ ok: true }); // 65504
    expect(allFinite("float16", encodeFromFloat64("float16", new Float64Array([1, 70000])))).toEqual({ ok: false, index: 1 });
    expect(allFinite("bfloat16", new Uint8Array([0x7f, 0x7f]))).toEqual({ ok: true });
    expect(allFinite("bfloat16", new Uint8Array([0x80, 0x7f]))).toEqual({ ok: false, index: 0 });
    expect(allFinite("float32", new Uint8Array([0xff, 0xff, 0x7f, 0x7f]))).toEqual({ ok: true });
    expect(allFinite("float64", new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0x7f]))).toEqual({ ok: true });
    expect(allFinite("float64", new Uint8Array([0, 0, 0, 0, 0, 0, 0xf8, 0xff]))).toEqual({ ok: false, index: 0 });
  });
});

describe.runIf(hasNumpy())("cross-check against numpy", () => {
  const numpy = (script: string, input: Uint8Array): Uint8Array =>
    new Uint8Array(execFileSync("python3", ["-c", script], { input, maxBuffer: 1 << 26 }));

  test("float16 decode of all 65536 bit patterns matches numpy", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const bytes = new Uint8Array(all.buffer);
    const ref = numpy(
      "import sys, numpy as np; sys.stdout.buffer.write(np.frombuffer(sys.stdin.buffer.read(), '<f2').astype('<f8').tobytes())",
      bytes,
    );
    const expected = new Float64Array(ref.buffer);
    const actual = decodeToFloat64("float16", bytes);
    const wrong: number[] = [];
    for (let i = 0; i < 65536; i++) {
      const same = Number.isNaN(expected[i]) ? Number.isNaN(actual[i]) : Object.is(actual[i], expected[i]);
      if (!same) wrong.push(i);
    }
    expect(wrong).toEqual([]);
  });

  test("float64 → float16 and float32 → float16 rounding match numpy", () => {
    const next = rng(42);
    const doubles = new Float64Array(50000);
    for (let i = 0; i < doubles.length; i++) doubles[i] = (next() - 0.5) * 2 ** Math.floor(next() * 46 - 30);
    const ref = numpy(
      "import sys, numpy as np; sys.stdout.buffer.write(np.frombuffer(sys.stdin.buffer.read(), '<f8').astype('<f2').tobytes())",
      new Uint8Array(doubles.buffer),
    );
    expect(encodeFromFloat64("float16", doubles)).toEqual(ref);
    const singles = new Float32Array(doubles);
    const ref32 = numpy(
      "import sys, numpy as np; sys.stdout.buffer.write(np.frombuffer(sys.stdin.buffer.read(), '<f4').astype('<f2').tobytes())",
      new Uint8Array(singles.buffer),
    );
    expect(encodeFromFloat32("float16", singles)).toEqual(ref32);
  });

  test("float32 → bfloat16 matches round-half-even computed with numpy integer ops", () => {
    const next = rng(5);
    const singles = new Float32Array(50000);
    for (let i = 0; i < singles.length; i++) singles[i] = (next() - 0.5) * 2 ** Math.floor(next() * 80 - 40);
    const u = new Uint32Array(singles.buffer);
    for (let i = 0; i < 200; i++) u[i] = (u[i]! & 0xffff0000) | 0x8000; // exact ties
    const ref = numpy(
      [
        "import sys, numpy as np",
        "u = np.frombuffer(sys.stdin.buffer.read(), '<u4').astype(np.uint64)",
        "r = ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype('<u2')",
        "sys.stdout.buffer.write(r.tobytes())",
      ].join("\n"),
      new Uint8Array(singles.buffer),
    );
    expect(encodeFromFloat32("bfloat16", singles)).toEqual(ref);
  });
});
