// Helpers to build safetensors files from typed arrays: whole files for
// payloads that fit in memory, and the header alone (plus the data order) for
// files streamed tensor by tensor, so a client never has to hold 2 GiB at once.

import { dtypeByteSize, dtypeToSafetensors, encodeFromFloat32, encodeFromFloat64, isDtype, type Dtype } from "./dtype.js";
import { SOURCE_MODEL_MAX_LENGTH } from "./kv-cache.js";
import { encodeSafetensors, type SafetensorsTensor } from "./safetensors.js";

/**
 * A tensor's values: Float32Array / Float64Array are converted to the dtype
 * (round-to-nearest-even when narrowing), Uint16Array holds raw float16 or
 * bfloat16 bit patterns, Uint8Array holds the little-endian bytes as they are.
 */
export type TensorValues = Float32Array | Float64Array | Uint16Array | Uint8Array;

export interface TensorSpec {
  dtype: Dtype;
  shape: readonly number[];
  data: TensorValues;
}

export interface TensorLayoutSpec {
  dtype: Dtype;
  shape: readonly number[];
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian bytes of a tensor's values in its dtype (a view when no conversion is needed). */
export function tensorBytes(spec: TensorSpec): Uint8Array {
  const { dtype, data } = spec;
  if (!isDtype(dtype)) throw new RangeError(`unknown dtype ${String(dtype)}`);
  if (data instanceof Float32Array) return encodeFromFloat32(dtype, data);
  if (data instanceof Float64Array) return encodeFromFloat64(dtype, data);
  if (data instanceof Uint16Array) {
    if (dtype !== "float16" && dtype !== "bfloat16") {
      throw new RangeError(`a Uint16Array holds float16 or bfloat16 bits, not ${dtype} values`);
    }
    if (HOST_LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const out = new Uint8Array(data.length * 2);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < data.length; i++) dv.setUint16(2 * i, data[i]!, true);
    return out;
  }
  if (data instanceof Uint8Array) return data;
  throw new TypeError("tensor data must be a Float32Array, Float64Array, Uint16Array or Uint8Array");
}

/** A safetensors file from typed arrays (deterministic: sorted tensor names and metadata keys). */
export function buildSafetensors(tensors: Record<string, TensorSpec>, metadata?: Record<string, string>): Uint8Array {
  const encoded: Record<string, SafetensorsTensor> = Object.create(null) as Record<string, SafetensorsTensor>;
  for (const [name, spec] of Object.entries(tensors)) {
    encoded[name] = { dtype: spec.dtype, shape: [...spec.shape], data: tensorBytes(spec) };
  }
  return encodeSafetensors(encoded, metadata);
}

export interface KvCacheSafetensorsInput {
  /** Stored as `__metadata__.sourceModel`; without it the service records the model as "unknown". */
  sourceModel?: string;
  keys: TensorSpec;
  values: TensorSpec;
  /** More tensors to keep alongside keys and values. */
  tensors?: Record<string, TensorSpec>;
  /** Other `__metadata__` entries (strings), e.g. tokenCount. */
  metadata?: Record<string, string>;
}

function kvCacheMetadata(sourceModel: string | undefined, metadata: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = { ...metadata };
  if (sourceModel !== undefined) {
    if (sourceModel.trim().length === 0 || sourceModel.length > SOURCE_MODEL_MAX_LENGTH) {
      throw new RangeError(`sourceModel must be 1 to ${SOURCE_MODEL_MAX_LENGTH} characters`);
    }
    out.sourceModel = sourceModel;
  }
  return out;
}

function checkKvShapes(keys: readonly number[], values: readonly number[]): void {
  if (keys.length !== values.length || keys.some((d, i) => d !== values[i])) {
    throw new RangeError(`values shape [${values.join(", ")}] does not match keys shape [${keys.join(", ")}]`);
  }
}

/**
 * A KV-cache file for `client.payloads.upload`: tensors "keys" and "values"
 * (same shape), any extra tensors, and `sourceModel` in `__metadata__`.
 */
export function buildKvCacheSafetensors(input: KvCacheSafetensorsInput): Uint8Array {
  checkKvShapes(input.keys.shape, input.values.shape);
  for (const name of Object.keys(input.tensors ?? {})) {
    if (name === "keys" || name === "values") throw new RangeError(`extra tensor "${name}" clashes with the KV-cache tensor of that name`);
  }
  return buildSafetensors({ ...input.tensors, keys: input.keys, values: input.values }, kvCacheMetadata(input.sourceModel, input.metadata));
}

export interface SafetensorsLayout {
  /** The first bytes of the file: 8-byte length, padded JSON header. */
  header: Uint8Array;
  /** Tensor names in the order their bytes follow the header. */
  order: string[];
  /** Byte length of each tensor's data. */
  byteLengths: Record<string, number>;
  /** Total file size: header plus every tensor's data. */
  size: number;
}

/**
 * The header of the file buildSafetensors would write for these shapes, byte
 * for byte, so a large file can be streamed: send `header`, then each tensor's
 * little-endian bytes in `order`.
 */
export function safetensorsLayout(tensors: Record<string, TensorLayoutSpec>, metadata?: Record<string, string>): SafetensorsLayout {
  const order = Object.keys(tensors).sort();
  const entries: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    const pairs = Object.keys(metadata)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${JSON.stringify(metadata[key])}`);
    entries.push(`"__metadata__":{${pairs.join(",")}}`);
  }
  const byteLengths: Record<string, number> = Object.create(null) as Record<string, number>;
  let offset = 0;
  for (const name of order) {
    if (name === "__metadata__") throw new RangeError('"__metadata__" cannot be a tensor name');
    const { dtype, shape } = tensors[name]!;
    if (!isDtype(dtype)) throw new RangeError(`tensor "${name}": unknown dtype ${String(dtype)}`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new RangeError(`tensor "${name}": shape must hold non-negative integers`);
    const length = shape.reduce((a, b) => a * b, 1) * dtypeByteSize(dtype);
    entries.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype: dtypeToSafetensors(dtype), shape, data_offsets: [offset, offset + length] })}`);
    byteLengths[name] = length;
    offset += length;
  }
  const json = new TextEncoder().encode(`{${entries.join(",")}}`);
  const padding = (8 - ((8 + json.length) % 8)) % 8;
  const headerLength = json.length + padding;
  const header = new Uint8Array(8 + headerLength);
  const dv = new DataView(header.buffer);
  dv.setUint32(0, headerLength % 2 ** 32, true);
  dv.setUint32(4, Math.floor(headerLength / 2 ** 32), true);
  header.set(json, 8);
  header.fill(0x20, 8 + json.length);
  return { header, order, byteLengths, size: header.length + offset };
}

/** The layout of a KV-cache file (see buildKvCacheSafetensors) whose tensor bytes you will stream yourself. */
export function kvCacheSafetensorsLayout(input: {
  sourceModel?: string;
  keys: TensorLayoutSpec;
  values: TensorLayoutSpec;
  tensors?: Record<string, TensorLayoutSpec>;
  metadata?: Record<string, string>;
}): SafetensorsLayout {
  checkKvShapes(input.keys.shape, input.values.shape);
  return safetensorsLayout({ ...input.tensors, keys: input.keys, values: input.values }, kvCacheMetadata(input.sourceModel, input.metadata));
}
