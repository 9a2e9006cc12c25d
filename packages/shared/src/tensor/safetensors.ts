// The safetensors container (https://huggingface.co/docs/safetensors): an
// 8-byte little-endian header length N, N bytes of UTF-8 JSON header, then the
// data buffer. Only the four float dtypes of KV-cache tensors are accepted.

import { dtypeByteSize, dtypeFromSafetensors, dtypeToSafetensors, isDtype, type Dtype } from "./dtype.js";
import { isPlainObject } from "./encoded.js";

export const SAFETENSORS_MAX_HEADER_BYTES = 100 * 1024 * 1024;
const METADATA_KEY = "__metadata__";

export interface SafetensorsTensor {
  dtype: Dtype;
  shape: number[];
  /** Little-endian row-major element bytes. */
  data: Uint8Array;
}

export interface SafetensorsTensorInfo {
  dtype: Dtype;
  shape: number[];
  /** Byte offsets relative to the start of the data buffer. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** N, the JSON header's byte length (padding included). */
  headerLength: number;
  /** Absolute offset of the data buffer: 8 + N. */
  dataStart: number;
  tensors: Record<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
}

export type SafetensorsHeaderResult =
  | ({ ok: true } & SafetensorsHeader)
  | { ok: false; needBytes: number }
  | { ok: false; error: string };

/** A malformed safetensors file (bad header, unsupported dtype, truncated, …): a client error. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

function shapeProduct(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isDimension(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/**
 * Writes a safetensors file. Tensors are laid out in sorted-name order and
 * metadata keys are sorted, so equal input gives equal bytes (a content hash is
 * stable). The header is padded with spaces so the data buffer starts on an
 * 8-byte boundary.
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const names = Object.keys(tensors).sort();
  const entries: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    const pairs = Object.keys(metadata)
      .sort()
      .map((key) => {
        const value = metadata[key];
        if (typeof value !== "string") throw new TypeError(`metadata "${key}" must be a string`);
        return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
      });
    entries.push(`${JSON.stringify(METADATA_KEY)}:{${pairs.join(",")}}`);
  }
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) throw new RangeError(`"${METADATA_KEY}" cannot be a tensor name`);
    const t = tensors[name]!;
    if (!isDtype(t.dtype)) throw new RangeError(`tensor "${name}": unknown dtype ${String(t.dtype)}`);
    if (!t.shape.every(isDimension)) throw new RangeError(`tensor "${name}": shape must hold non-negative integers`);
    const length = shapeProduct(t.shape) * dtypeByteSize(t.dtype);
    if (t.data.length !== length) {
      throw new RangeError(`tensor "${name}": shape [${t.shape.join(", ")}] of ${t.dtype} needs ${length} bytes, got ${t.data.length}`);
    }
    const info = { dtype: dtypeToSafetensors(t.dtype), shape: t.shape, data_offsets: [offset, offset + length] };
    entries.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    offset += length;
  }
  const json = new TextEncoder().encode(`{${entries.join(",")}}`);
  const padding = (8 - ((8 + json.length) % 8)) % 8;
  const headerLength = json.length + padding;
  const out = new Uint8Array(8 + headerLength + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, headerLength % 2 ** 32, true);
  dv.setUint32(4, Math.floor(headerLength / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const name of names) {
    const data = tensors[name]!.data;
    out.set(data, at);
    at += data.length;
  }
  return out;
}

const TENSOR_FIELDS = new Set(["dtype", "shape", "data_offsets"]);

/**
 * Parses the header from the first bytes of a file, for streaming readers.
 * With too few bytes it answers `needBytes`: the prefix length (counted from
 * the start of the file) required to parse the header; read until you hold at
 * least that many bytes and call again.
 */
export function readSafetensorsHeader(prefix: Uint8Array): SafetensorsHeaderResult {
  if (prefix.length < 8) return { ok: false, needBytes: 8 };
  const dv = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const low = dv.getUint32(0, true);
  const high = dv.getUint32(4, true);
  const headerLength = high * 2 ** 32 + low;
  if (headerLength > SAFETENSORS_MAX_HEADER_BYTES) {
    return { ok: false, error: `header length ${headerLength} exceeds the limit of ${SAFETENSORS_MAX_HEADER_BYTES} bytes` };
  }
  if (headerLength < 2) return { ok: false, error: `header length ${headerLength} is too small for a JSON object` };
  const dataStart = 8 + headerLength;
  if (prefix.length < dataStart) return { ok: false, needBytes: dataStart };

  let text: string;
  try {
    // ignoreBOM keeps a byte-order mark in the text, so it fails the "{" check below.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(prefix.subarray(8, dataStart));
  } catch {
    return { ok: false, error: "header is not valid UTF-8" };
  }
  if (!text.startsWith("{")) return { ok: false, error: 'header must be a JSON object starting with "{"' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `header is not valid JSON: ${(e as Error).message}` };
  }
  if (!isPlainObject(parsed)) return { ok: false, error: "header must be a JSON object" };

  // Null-prototype records: tensor names such as "__proto__" stay plain keys.
  const tensors = Object.create(null) as Record<string, SafetensorsTensorInfo>;
  const metadata = Object.create(null) as Record<string, string>;
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(entry)) return { ok: false, error: `"${METADATA_KEY}" must be an object of strings` };
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== "string") return { ok: false, error: `"${METADATA_KEY}" entry "${key}" must be a string` };
        metadata[key] = value;
      }
      continue;
    }
    const label = `tensor ${JSON.stringify(name)}`;
    if (!isPlainObject(entry)) return { ok: false, error: `${label} must be an object with dtype, shape and data_offsets` };
    const unknown = Object.keys(entry).find((k) => !TENSOR_FIELDS.has(k));
    if (unknown !== undefined) return { ok: false, error: `${label} has an unknown field "${unknown}"` };
    const { dtype: rawDtype, shape, data_offsets: offsets } = entry;
    if (typeof rawDtype !== "string") return { ok: false, error: `${label} is missing its dtype` };
    const dtype = dtypeFromSafetensors(rawDtype);
    if (!dtype) {
      return { ok: false, error: `${label} has unsupported dtype "${rawDtype}" (supported: F16, BF16, F32, F64)` };
    }
    if (!Array.isArray(shape) || !shape.every(isDimension)) {
      return { ok: false, error: `${label} shape must be an array of non-negative integers` };
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isDimension)) {
      return { ok: false, error: `${label} data_offsets must be [begin, end] with non-negative integers` };
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) return { ok: false, error: `${label} data_offsets [${begin}, ${end}] end before they begin` };
    const count = shapeProduct(shape);
    const size = count * dtypeByteSize(dtype);
    if (!Number.isSafeInteger(size) || size !== end - begin) {
      return {
        ok: false,
        error: `${label} shape [${shape.join(", ")}] of ${rawDtype} needs ${size} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      };
    }
    tensors[name] = { dtype, shape: shape.slice(), begin, end };
    spans.push({ name, begin, end });
  }

  // The data buffer must be covered exactly: contiguous from 0, no holes, no overlaps.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const span of spans) {
    if (span.begin < expected) {
      return { ok: false, error: `tensor ${JSON.stringify(span.name)} overlaps the previous tensor (begins at ${span.begin}, before ${expected})` };
    }
    if (span.begin > expected) {
      return { ok: false, error: `tensor ${JSON.stringify(span.name)} leaves a hole in the data buffer (begins at ${span.begin}, expected ${expected})` };
    }
    expected = span.end;
  }
  return { ok: true, headerLength, dataStart, tensors, metadata };
}

/** Total file size the header describes: data start plus the end of the last tensor. */
export function safetensorsTotalSize(header: Pick<SafetensorsHeader, "dataStart" | "tensors">): number {
  let last = 0;
  for (const info of Object.values(header.tensors)) last = Math.max(last, info.end);
  return header.dataStart + last;
}

export interface DecodedSafetensors {
  header: SafetensorsHeader;
  /** Views into the input bytes (not copies). */
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** Parses a whole safetensors file; throws SafetensorsError when it is malformed or truncated. */
export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  const r = readSafetensorsHeader(bytes);
  if (!r.ok) {
    if ("needBytes" in r) throw new SafetensorsError(`file is truncated: its header needs ${r.needBytes} bytes, got ${bytes.length}`);
    throw new SafetensorsError(r.error);
  }
  const { ok: _ok, ...header } = r;
  const total = safetensorsTotalSize(header);
  if (bytes.length < total) throw new SafetensorsError(`file is truncated: the header describes ${total} bytes, got ${bytes.length}`);
  if (bytes.length > total) throw new SafetensorsError(`file has ${bytes.length - total} bytes after the last tensor`);
  const tensors = Object.create(null) as Record<string, SafetensorsTensor>;
  for (const [name, info] of Object.entries(header.tensors)) {
    tensors[name] = {
      dtype: info.dtype,
      shape: info.shape,
      data: bytes.subarray(header.dataStart + info.begin, header.dataStart + info.end),
    };
  }
  return { header, tensors, metadata: header.metadata };
}
