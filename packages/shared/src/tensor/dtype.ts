// Element types of KV-cache tensors and their little-endian byte encodings.
// Pure code over Uint8Array/DataView so it runs in browsers as well as Node.

export const DTYPES = ["float16", "bfloat16", "float32", "float64"] as const;
export type Dtype = (typeof DTYPES)[number];

/** Safetensors spells the same four types in upper-case short form. */
export const SAFETENSORS_DTYPES = ["F16", "BF16", "F32", "F64"] as const;
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

const BYTE_SIZE: Record<Dtype, number> = { float16: 2, bfloat16: 2, float32: 4, float64: 8 };
const TO_SAFETENSORS: Record<Dtype, SafetensorsDtype> = {
  float16: "F16",
  bfloat16: "BF16",
  float32: "F32",
  float64: "F64",
};
const FROM_SAFETENSORS: Record<SafetensorsDtype, Dtype> = {
  F16: "float16",
  BF16: "bfloat16",
  F32: "float32",
  F64: "float64",
};

export function isDtype(value: unknown): value is Dtype {
  return typeof value === "string" && (DTYPES as readonly string[]).includes(value);
}

export function dtypeByteSize(dtype: Dtype): number {
  return BYTE_SIZE[dtype];
}

export function dtypeToSafetensors(dtype: Dtype): SafetensorsDtype {
  return TO_SAFETENSORS[dtype];
}

/** The dtype for a safetensors type name, or undefined for types we do not accept (I8, F8_E4M3, …). */
export function dtypeFromSafetensors(name: string): Dtype | undefined {
  return Object.hasOwn(FROM_SAFETENSORS, name) ? FROM_SAFETENSORS[name as SafetensorsDtype] : undefined;
}

// ---------------------------------------------------------------------------
// Scalar conversions. Rounding is done once, from the exact double, so that
// number → float16 never double-rounds through float32.

const POW2 = (e: number): number => 2 ** e;

/** Round a non-negative double to the nearest integer, ties to even. */
function roundHalfEven(r: number): number {
  const f = Math.floor(r);
  const diff = r - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Round |x| to a binary float with `mantBits` stored mantissa bits and exponent
 * bias `bias`; returns the bits without the sign. Handles subnormals and
 * overflow to infinity with round-to-nearest-even.
 */
function roundToSmallFloat(a: number, mantBits: number, bias: number): number {
  const implicit = POW2(mantBits);
  const expAllOnes = 2 * bias + 1;
  const infBits = expAllOnes * implicit;
  // Halfway between the largest finite value and the next power of two rounds
  // to infinity (the largest finite mantissa is odd).
  const overflow = (2 - POW2(-(mantBits + 1))) * POW2(bias);
  if (a >= overflow) return infBits;
  const minNormal = POW2(1 - bias);
  if (a < minNormal) {
    // Subnormal: value = m × 2^(1 - bias - mantBits); scaling by a power of two is exact.
    // A result of `implicit` is the smallest normal, which the same bit layout encodes.
    return roundHalfEven(a * POW2(bias - 1 + mantBits));
  }
  let e = Math.floor(Math.log2(a));
  // log2 can be off by one next to powers of two; fix it exactly.
  if (POW2(e) > a) e -= 1;
  else if (POW2(e + 1) <= a) e += 1;
  let m = roundHalfEven(a * POW2(mantBits - e));
  if (m === 2 * implicit) {
    m = implicit;
    e += 1;
  }
  return (e + bias) * implicit + (m - implicit);
}

export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * POW2(-24);
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (mant + 1024) * POW2(exp - 25);
}

export function numberToFloat16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  return sign | roundToSmallFloat(Math.abs(x), 10, 15);
}

export function bfloat16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 7) & 0xff;
  const mant = bits & 0x7f;
  if (exp === 0) return sign * mant * POW2(-133);
  if (exp === 0xff) return mant === 0 ? sign * Infinity : NaN;
  return sign * (mant + 128) * POW2(exp - 134);
}

export function numberToBfloat16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  return sign | roundToSmallFloat(Math.abs(x), 7, 127);
}

// Fast paths from float32 bit patterns (exact source, so one rounding).

function float32BitsToFloat16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (abs >= 0x477ff000) return sign | 0x7c00; // ≥ 65520 rounds to infinity
  if (abs < 0x38800000) {
    // Below 2^-14: a float16 subnormal (or zero).
    if (abs < 0x33000000) return sign; // below 2^-25 rounds to zero
    const e = abs >>> 23;
    const mant = (abs & 0x7fffff) | 0x800000;
    const shift = 126 - e; // 14..24
    let m = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m += 1;
    return sign | m;
  }
  let h = (abs - 0x38000000) >>> 13; // re-bias exponent 127 → 15
  const rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1;
  return sign | h;
}

function float32BitsToBfloat16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------
// Array conversions.

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let float16Table: Float32Array | undefined;
function float16Lookup(): Float32Array {
  if (!float16Table) {
    float16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) float16Table[i] = float16BitsToNumber(i);
  }
  return float16Table;
}

function checkByteLength(dtype: Dtype, bytes: Uint8Array): number {
  const size = BYTE_SIZE[dtype];
  if (bytes.length % size !== 0) {
    throw new RangeError(`${bytes.length} bytes is not a whole number of ${dtype} elements (${size} bytes each)`);
  }
  return bytes.length / size;
}

/** A copy of `bytes` in a fresh buffer (offset 0), so typed-array views of any width line up. */
function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out.buffer;
}

/** Typed view when the input is already aligned, otherwise an aligned copy. */
function view<T>(
  bytes: Uint8Array,
  width: number,
  make: (buffer: ArrayBuffer, offset: number, length: number) => T,
): T {
  const n = bytes.length / width;
  if (bytes.byteOffset % width === 0 && bytes.buffer instanceof ArrayBuffer) return make(bytes.buffer, bytes.byteOffset, n);
  return make(alignedCopy(bytes), 0, n);
}

function readU16(bytes: Uint8Array): Uint16Array {
  if (!HOST_LITTLE_ENDIAN) {
    const n = bytes.length >>> 1;
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
    return out;
  }
  return view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
}

function readF32(bytes: Uint8Array): Float32Array {
  if (!HOST_LITTLE_ENDIAN) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(bytes.length >>> 2);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
    return out;
  }
  return view(bytes, 4, (b, o, n) => new Float32Array(b, o, n));
}

function readF64(bytes: Uint8Array): Float64Array {
  if (!HOST_LITTLE_ENDIAN) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float64Array(bytes.length >>> 3);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat64(8 * i, true);
    return out;
  }
  return view(bytes, 8, (b, o, n) => new Float64Array(b, o, n));
}

/** Little-endian bytes of a typed array (a fresh buffer the caller owns). */
function toBytes(arr: Uint16Array | Float32Array | Float64Array): Uint8Array {
  const width = arr.BYTES_PER_ELEMENT;
  const out = new Uint8Array(arr.length * width);
  if (HOST_LITTLE_ENDIAN) {
    out.set(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
    return out;
  }
  const dv = new DataView(out.buffer);
  for (let i = 0; i < arr.length; i++) {
    if (arr instanceof Uint16Array) dv.setUint16(i * 2, arr[i]!, true);
    else if (arr instanceof Float32Array) dv.setFloat32(i * 4, arr[i]!, true);
    else dv.setFloat64(i * 8, arr[i]!, true);
  }
  return out;
}

/**
 * Little-endian bytes of a float64 array the caller hands over: a view of the
 * same memory on little-endian hosts (no copy), a converted copy otherwise.
 */
export function float64ArrayBytes(values: Float64Array): Uint8Array {
  if (HOST_LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return toBytes(values);
}

/** Decode little-endian `bytes` of `dtype` into a new Float32Array (float64 values are rounded). */
export function decodeToFloat32(dtype: Dtype, bytes: Uint8Array): Float32Array {
  const n = checkByteLength(dtype, bytes);
  switch (dtype) {
    case "float32": {
      const arr = readF32(bytes);
      // readF32 already copied when the input was unaligned.
      return arr.buffer === bytes.buffer ? new Float32Array(arr) : arr;
    }
    case "float64":
      return new Float32Array(readF64(bytes));
    case "float16": {
      const bits = readU16(bytes);
      const table = float16Lookup();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[bits[i]!]!;
      return out;
    }
    case "bfloat16": {
      const bits = readU16(bytes);
      const out = new Float32Array(n);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) outBits[i] = bits[i]! << 16;
      return out;
    }
  }
}

/** Decode little-endian `bytes` of `dtype` into a new Float64Array (exact for every dtype). */
export function decodeToFloat64(dtype: Dtype, bytes: Uint8Array): Float64Array {
  checkByteLength(dtype, bytes);
  if (dtype === "float64") {
    const arr = readF64(bytes);
    return arr.buffer === bytes.buffer ? new Float64Array(arr) : arr;
  }
  return new Float64Array(decodeToFloat32(dtype, bytes));
}

/** Encode float32 values as little-endian `dtype` bytes (round-to-nearest-even when narrowing). */
export function encodeFromFloat32(dtype: Dtype, values: Float32Array): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case "float32":
      return toBytes(values);
    case "float64":
      return toBytes(new Float64Array(values));
    case "float16":
    case "bfloat16": {
      const src = new Uint32Array(values.buffer, values.byteOffset, n);
      const out = new Uint16Array(n);
      if (dtype === "float16") for (let i = 0; i < n; i++) out[i] = float32BitsToFloat16Bits(src[i]!);
      else for (let i = 0; i < n; i++) out[i] = float32BitsToBfloat16Bits(src[i]!);
      return toBytes(out);
    }
  }
}

/** Encode float64 values as little-endian `dtype` bytes, rounding once from the exact double. */
export function encodeFromFloat64(dtype: Dtype, values: Float64Array): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case "float64":
      return toBytes(values);
    case "float32":
      return toBytes(new Float32Array(values));
    case "float16":
    case "bfloat16": {
      const narrowed = new Float32Array(values);
      const narrowedBits = new Uint32Array(narrowed.buffer);
      const out = new Uint16Array(n);
      const fast = dtype === "float16" ? float32BitsToFloat16Bits : float32BitsToBfloat16Bits;
      const slow = dtype === "float16" ? numberToFloat16Bits : numberToBfloat16Bits;
      for (let i = 0; i < n; i++) {
        const x = values[i]!;
        // Values exactly representable in float32 take the bit-level path; others round from the double.
        out[i] = narrowed[i] === x || Number.isNaN(x) ? fast(narrowedBits[i]!) : slow(x);
      }
      return toBytes(out);
    }
  }
}

export type FiniteCheck = { ok: true } | { ok: false; index: number };

/**
 * Whether every element of little-endian `bytes` is finite. Reads the exponent
 * bits in place (any byte offset), so nothing is allocated.
 */
export function allFinite(dtype: Dtype, bytes: Uint8Array): FiniteCheck {
  const n = checkByteLength(dtype, bytes);
  switch (dtype) {
    case "float16":
      // High byte: s eeeee mm — all five exponent bits set means Inf/NaN.
      for (let i = 0, p = 1; i < n; i++, p += 2) if ((bytes[p]! & 0x7c) === 0x7c) return { ok: false, index: i };
      return { ok: true };
    case "bfloat16":
      // High byte: s eeeeeee, low byte: e mmmmmmm.
      for (let i = 0, p = 0; i < n; i++, p += 2) {
        if ((bytes[p + 1]! & 0x7f) === 0x7f && (bytes[p]! & 0x80) === 0x80) return { ok: false, index: i };
      }
      return { ok: true };
    case "float32":
      for (let i = 0, p = 2; i < n; i++, p += 4) {
        if ((bytes[p + 1]! & 0x7f) === 0x7f && (bytes[p]! & 0x80) === 0x80) return { ok: false, index: i };
      }
      return { ok: true };
    case "float64":
      // Byte 7: s eeeeeee, byte 6: eeee mmmm.
      for (let i = 0, p = 6; i < n; i++, p += 8) {
        if ((bytes[p + 1]! & 0x7f) === 0x7f && (bytes[p]! & 0xf0) === 0xf0) return { ok: false, index: i };
      }
      return { ok: true };
  }
}
