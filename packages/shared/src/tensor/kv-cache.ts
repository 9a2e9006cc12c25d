// The KV-cache document ({sourceModel, keys, values, metadata?, …}) and its
// canonical binary form: a deterministic safetensors file whose SHA-256 is the
// payload's content address, and which converts back to the document as published.

import { encodeBase64 } from "./base64.js";
import { decodeToFloat64, dtypeByteSize, float64ArrayBytes, type Dtype } from "./dtype.js";
import { analyzeEncoded, isEncodedTensor, isPlainObject, type EncodedTensor } from "./encoded.js";
import { analyzeNested, buildNested, flattenNested, MAX_TENSOR_RANK, type TensorIssueCode, type TensorPath } from "./nested.js";
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type SafetensorsTensor } from "./safetensors.js";

export const SOURCE_MODEL_MAX_LENGTH = 50;
export const KV_CACHE_FORMAT = "kv-cache/1";
/** sourceModel given to uploaded safetensors files that do not name one. */
export const UNKNOWN_SOURCE_MODEL = "unknown";
const MAX_JSON_DEPTH = 64;

export type TensorForm = "nested" | "encoded";

export interface ParsedTensor {
  form: TensorForm;
  /** float64 for nested tensors. */
  dtype: Dtype;
  shape: number[];
  /** Little-endian row-major element bytes. */
  bytes: Uint8Array;
}

export interface ParsedKvCache {
  sourceModel: string;
  keys: ParsedTensor;
  values: ParsedTensor;
  /** Every other top-level key (metadata, …), untouched, in original order. */
  rest: Record<string, unknown>;
  /** Top-level key order of the published document; defaults to sourceModel, keys, values, then rest. */
  keyOrder?: string[];
}

export interface KvCacheIssue {
  path: TensorPath;
  message: string;
  /** "too_large" maps to 413, "invalid" to 400. */
  code: TensorIssueCode;
}

export type KvCacheAnalysis = { ok: true; payload: ParsedKvCache } | { ok: false; issues: KvCacheIssue[] };

const RESERVED = new Set(["sourceModel", "keys", "values"]);

function defineKey(target: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty, not assignment: a "__proto__" key must stay a data key.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function analyzeTensor(
  value: unknown,
  field: "keys" | "values",
  maxElements: number,
): { ok: true; tensor: ParsedTensor; count: number } | { ok: false; issue: KvCacheIssue } {
  // Any object is taken as an attempt at the compact form, so a missing dtype is reported as such.
  if (isEncodedTensor(value) || isPlainObject(value)) {
    const r = analyzeEncoded(value, { maxElements });
    if (!r.ok) return { ok: false, issue: { path: [field, ...r.path], message: `${field}: ${r.message}`, code: r.code } };
    return { ok: true, tensor: { form: "encoded", dtype: r.dtype, shape: r.shape, bytes: r.bytes }, count: r.elementCount };
  }
  const r = analyzeNested(value, { maxElements, maxRank: MAX_TENSOR_RANK });
  if (!r.ok) return { ok: false, issue: { path: [field, ...r.path], message: `${field}: ${r.message}`, code: r.code } };
  const bytes = float64ArrayBytes(flattenNested(value, r.shape));
  return { ok: true, tensor: { form: "nested", dtype: "float64", shape: r.shape, bytes }, count: r.elementCount };
}

function describeJson(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "number") return String(value);
  if (typeof value === "object") return value?.constructor?.name ?? "an object";
  return `a ${typeof value}`;
}

/**
 * First place in `value` that is not a JSON value (null, boolean, string,
 * finite number, array, plain object), so the stored document round-trips.
 * Object properties that are undefined count as absent, as in JSON.stringify.
 */
function checkJsonValue(root: unknown, rootPath: TensorPath): KvCacheIssue | undefined {
  const stack: { value: unknown; path: TensorPath }[] = [{ value: root, path: rootPath }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value === "string" || typeof value === "boolean") continue;
    if (typeof value === "number") {
      if (Number.isFinite(value)) continue;
      return { path, message: `expected a JSON value, got ${describeJson(value)}`, code: "invalid" };
    }
    if (path.length - rootPath.length >= MAX_JSON_DEPTH) {
      return { path, message: `nested deeper than ${MAX_JSON_DEPTH} levels`, code: "invalid" };
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: [...path, i] });
      continue;
    }
    if (isPlainObject(value)) {
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, v] = entries[i]!;
        if (v !== undefined) stack.push({ value: v, path: [...path, k] });
      }
      continue;
    }
    return { path, message: `expected a JSON value, got ${describeJson(value)}`, code: "invalid" };
  }
  return undefined;
}

/**
 * Validates a KV-cache document: sourceModel (1–50 characters), keys and
 * values (nested or encoded, each validated on its own, same shape), the total
 * element count against maxElements, and every other top-level key as plain
 * JSON (metadata must be an object). Returns every issue found, paths rooted
 * at the document.
 */
export function analyzeKvCache(value: unknown, limits: { maxElements: number }): KvCacheAnalysis {
  if (!isPlainObject(value)) {
    return {
      ok: false,
      issues: [{ path: [], message: "expected a JSON object with sourceModel, keys and values", code: "invalid" }],
    };
  }
  const issues: KvCacheIssue[] = [];
  const sourceModel = value.sourceModel;
  if (sourceModel === undefined) {
    issues.push({ path: ["sourceModel"], message: "sourceModel is required", code: "invalid" });
  } else if (typeof sourceModel !== "string") {
    issues.push({ path: ["sourceModel"], message: "sourceModel must be a string", code: "invalid" });
  } else if (sourceModel.trim().length === 0) {
    issues.push({ path: ["sourceModel"], message: "sourceModel must not be empty", code: "invalid" });
  } else if (sourceModel.length > SOURCE_MODEL_MAX_LENGTH) {
    issues.push({
      path: ["sourceModel"],
      message: `sourceModel is ${sourceModel.length} characters, the limit is ${SOURCE_MODEL_MAX_LENGTH}`,
      code: "invalid",
    });
  }

  const tensors: Partial<Record<"keys" | "values", { tensor: ParsedTensor; count: number }>> = {};
  for (const field of ["keys", "values"] as const) {
    if (value[field] === undefined) {
      issues.push({ path: [field], message: `${field} is required`, code: "invalid" });
      continue;
    }
    const r = analyzeTensor(value[field], field, limits.maxElements);
    if (r.ok) tensors[field] = r;
    else issues.push(r.issue);
  }

  const rest: Record<string, unknown> = {};
  const keyOrder: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    keyOrder.push(key);
    if (RESERVED.has(key)) continue;
    if (key === "metadata" && !isPlainObject(v)) {
      issues.push({ path: ["metadata"], message: "metadata must be an object", code: "invalid" });
      continue;
    }
    const bad = checkJsonValue(v, [key]);
    if (bad) issues.push(bad);
    defineKey(rest, key, v);
  }

  const { keys, values } = tensors;
  if (keys && values) {
    const ks = keys.tensor.shape;
    const vs = values.tensor.shape;
    if (ks.length !== vs.length || ks.some((d, i) => d !== vs[i])) {
      issues.push({
        path: ["values"],
        message: `values shape [${vs.join(", ")}] does not match keys shape [${ks.join(", ")}]`,
        code: "invalid",
      });
    } else if (keys.count + values.count > limits.maxElements) {
      issues.push({
        path: [],
        message: `keys and values hold ${keys.count + values.count} elements together, over the limit of ${limits.maxElements}`,
        code: "too_large",
      });
    }
  }

  if (issues.length > 0 || !keys || !values) return { ok: false, issues };
  return {
    ok: true,
    payload: { sourceModel: sourceModel as string, keys: keys.tensor, values: values.tensor, rest, keyOrder },
  };
}

function documentOrder(p: ParsedKvCache): string[] {
  const present = ["sourceModel", "keys", "values", ...Object.keys(p.rest).filter((k) => !RESERVED.has(k))];
  const known = new Set(present);
  const order = (p.keyOrder ?? []).filter((k, i, all) => known.has(k) && all.indexOf(k) === i);
  const listed = new Set(order);
  return [...order, ...present.filter((k) => !listed.has(k))];
}

/**
 * The canonical binary form: tensors "keys" and "values" (nested ones as F64)
 * plus mx.* metadata holding the rest of the document and its key order.
 * Deterministic, so its SHA-256 can address the payload.
 */
export function kvCacheToSafetensors(p: ParsedKvCache): Uint8Array {
  const doc: Record<string, unknown> = {};
  defineKey(doc, "sourceModel", p.sourceModel);
  for (const [k, v] of Object.entries(p.rest)) if (!RESERVED.has(k)) defineKey(doc, k, v);
  const tensor = (t: ParsedTensor, field: string): SafetensorsTensor => {
    if (t.form === "nested" && t.dtype !== "float64") throw new RangeError(`${field}: nested tensors are float64`);
    return { dtype: t.dtype, shape: t.shape, data: t.bytes };
  };
  return encodeSafetensors(
    { keys: tensor(p.keys, "keys"), values: tensor(p.values, "values") },
    {
      "mx.format": KV_CACHE_FORMAT,
      "mx.keys.form": p.keys.form,
      "mx.values.form": p.values.form,
      "mx.doc": JSON.stringify(doc),
      "mx.order": JSON.stringify(documentOrder(p)),
    },
  );
}

function checkKvTensor(name: string, t: SafetensorsTensor | undefined): SafetensorsTensor {
  if (!t) throw new SafetensorsError(`a KV-cache file needs a tensor named "${name}"`);
  if (t.shape.length < 1 || t.shape.length > MAX_TENSOR_RANK || t.shape.some((d) => d === 0)) {
    throw new SafetensorsError(
      `tensor "${name}" has shape [${t.shape.join(", ")}]; KV-cache tensors have rank 1 to ${MAX_TENSOR_RANK} and no empty dimension`,
    );
  }
  return t;
}

function parseJsonMetadata(meta: Record<string, string>, key: string): unknown {
  const text = meta[key];
  if (text === undefined) throw new SafetensorsError(`metadata "${key}" is missing`);
  try {
    return JSON.parse(text);
  } catch {
    throw new SafetensorsError(`metadata "${key}" is not valid JSON`);
  }
}

/**
 * ParsedKvCache from a safetensors file: our canonical form (mx.format
 * metadata) or a plain upload with "keys"/"values" tensors, whose tensors
 * become encoded form, sourceModel comes from __metadata__.sourceModel (or
 * "unknown"), and other metadata entries go under `metadata`. Throws
 * SafetensorsError for malformed files; run analyzeKvCache on the document for
 * the content rules (finite values, matching shapes, limits).
 */
export function safetensorsToParsedKvCache(bytes: Uint8Array): ParsedKvCache {
  const file = decodeSafetensors(bytes);
  const extra = Object.keys(file.tensors).filter((name) => name !== "keys" && name !== "values");
  if (extra.length > 0) {
    throw new SafetensorsError(`unexpected tensor "${extra[0]}": a KV-cache file holds exactly "keys" and "values"`);
  }
  const keys = checkKvTensor("keys", file.tensors.keys);
  const values = checkKvTensor("values", file.tensors.values);
  const meta = file.metadata;
  const format = meta["mx.format"];

  if (format === undefined) {
    const { sourceModel, ...others } = meta;
    const rest: Record<string, unknown> = {};
    if (Object.keys(others).length > 0) {
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(others)) defineKey(metadata, k, v);
      rest.metadata = metadata;
    }
    const encoded = (t: SafetensorsTensor): ParsedTensor => ({ form: "encoded", dtype: t.dtype, shape: t.shape, bytes: t.data });
    return { sourceModel: sourceModel ?? UNKNOWN_SOURCE_MODEL, keys: encoded(keys), values: encoded(values), rest };
  }
  if (format !== KV_CACHE_FORMAT) throw new SafetensorsError(`unsupported mx.format "${format}" (expected "${KV_CACHE_FORMAT}")`);

  const form = (field: "keys" | "values", t: SafetensorsTensor): ParsedTensor => {
    const f = meta[`mx.${field}.form`];
    if (f !== "nested" && f !== "encoded") throw new SafetensorsError(`metadata "mx.${field}.form" must be "nested" or "encoded"`);
    if (f === "nested" && t.dtype !== "float64") throw new SafetensorsError(`nested tensor "${field}" must be F64`);
    return { form: f, dtype: t.dtype, shape: t.shape, bytes: t.data };
  };
  const doc = parseJsonMetadata(meta, "mx.doc");
  if (!isPlainObject(doc) || typeof doc.sourceModel !== "string") {
    throw new SafetensorsError('metadata "mx.doc" must be a JSON object with a string sourceModel');
  }
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k === "keys" || k === "values") throw new SafetensorsError(`metadata "mx.doc" must not hold "${k}"`);
    if (k !== "sourceModel") defineKey(rest, k, v);
  }
  const order = parseJsonMetadata(meta, "mx.order");
  const expected = new Set([...Object.keys(doc), "keys", "values"]);
  if (
    !Array.isArray(order) ||
    order.length !== expected.size ||
    new Set(order).size !== order.length ||
    !order.every((k) => typeof k === "string" && expected.has(k))
  ) {
    throw new SafetensorsError('metadata "mx.order" must list every top-level key of the document once');
  }
  return {
    sourceModel: doc.sourceModel,
    keys: form("keys", keys),
    values: form("values", values),
    rest,
    keyOrder: order as string[],
  };
}

/** A tensor in its JSON form: nested number arrays, or {dtype, shape, data} with base64 data. */
export function parsedTensorToDocument(t: ParsedTensor): unknown[] | EncodedTensor {
  if (t.form === "nested") return buildNested(decodeToFloat64(t.dtype, t.bytes), t.shape);
  if (t.bytes.length !== t.shape.reduce((a, b) => a * b, 1) * dtypeByteSize(t.dtype)) {
    throw new RangeError(`tensor bytes do not match shape [${t.shape.join(", ")}] of ${t.dtype}`);
  }
  return { dtype: t.dtype, shape: t.shape.slice(), data: encodeBase64(t.bytes) };
}

/** The JSON document as published: original top-level key order, tensors in their original form. */
export function kvCacheToDocument(p: ParsedKvCache): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of documentOrder(p)) {
    if (key === "sourceModel") defineKey(out, key, p.sourceModel);
    else if (key === "keys") defineKey(out, key, parsedTensorToDocument(p.keys));
    else if (key === "values") defineKey(out, key, parsedTensorToDocument(p.values));
    else defineKey(out, key, p.rest[key]);
  }
  return out;
}

/** The published JSON document from a safetensors file (see safetensorsToParsedKvCache). */
export function safetensorsToKvCache(bytes: Uint8Array): Record<string, unknown> {
  return kvCacheToDocument(safetensorsToParsedKvCache(bytes));
}
