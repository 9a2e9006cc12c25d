import {
  analyzeKvCache,
  dtypeByteSize,
  encodeSafetensors,
  kvCacheToDocument,
  MAX_TENSOR_RANK,
  SafetensorsError,
  safetensorsToParsedKvCache,
  type Dtype,
  type ErrorDetail,
  type SafetensorsHeader,
  type SafetensorsTensor,
} from "@memory-exchange/shared";

export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
}

/** What a KV-cache file's header says, before (or without) reading its data. */
export interface KvCacheHeaderSummary {
  sourceModel: string;
  /** The document's other top-level keys (metadata, …) as the JSON form will show them. */
  rest: Record<string, unknown>;
  tensors: Record<string, TensorInfo>;
  /** true when the file holds tensors besides "keys" and "values" (kept, but it only travels as a download). */
  hasExtraTensors: boolean;
}

export type KvCacheHeaderResult = { ok: true; summary: KvCacheHeaderSummary } | { ok: false; issues: ErrorDetail[] };

function checkShape(name: string, info: TensorInfo | undefined): ErrorDetail | undefined {
  if (!info) return { path: name, message: `a KV-cache file needs a tensor named "${name}"` };
  const { shape } = info;
  if (shape.length < 1 || shape.length > MAX_TENSOR_RANK || shape.some((d) => d === 0)) {
    return {
      path: name,
      message: `shape [${shape.join(", ")}]: KV-cache tensors have rank 1 to ${MAX_TENSOR_RANK} and no empty dimension`,
    };
  }
  return undefined;
}

/**
 * Validates a safetensors header as a KV-cache file: tensors "keys" and
 * "values" of rank 1–4 with equal shapes, and the metadata exactly as the
 * reader (safetensorsToParsedKvCache, then analyzeKvCache) will judge the
 * whole file, by running them on a stand-in file with the same metadata and
 * one-element tensors. The data (finiteness) is checked as it streams.
 */
export function kvCacheFromHeader(header: Pick<SafetensorsHeader, "tensors" | "metadata">): KvCacheHeaderResult {
  const tensors: Record<string, TensorInfo> = Object.create(null) as Record<string, TensorInfo>;
  for (const [name, info] of Object.entries(header.tensors)) tensors[name] = { dtype: info.dtype, shape: info.shape.slice() };

  const issues = [checkShape("keys", tensors.keys), checkShape("values", tensors.values)].filter((i) => i !== undefined);
  if (issues.length > 0) return { ok: false, issues };
  const keys = tensors.keys!;
  const values = tensors.values!;
  if (keys.shape.length !== values.shape.length || keys.shape.some((d, i) => d !== values.shape[i])) {
    return {
      ok: false,
      issues: [{ path: "values", message: `shape [${values.shape.join(", ")}] does not match keys shape [${keys.shape.join(", ")}]` }],
    };
  }

  const stub = (info: TensorInfo): SafetensorsTensor => {
    const shape = info.shape.map(() => 1);
    return { dtype: info.dtype, shape, data: new Uint8Array(dtypeByteSize(info.dtype)) };
  };
  try {
    const parsed = safetensorsToParsedKvCache(encodeSafetensors({ keys: stub(keys), values: stub(values) }, header.metadata));
    const analysis = analyzeKvCache(kvCacheToDocument(parsed), { maxElements: Number.MAX_SAFE_INTEGER });
    if (!analysis.ok) {
      return { ok: false, issues: analysis.issues.map((i) => ({ path: `__metadata__.${i.path.join(".") || "(document)"}`, message: i.message })) };
    }
    return {
      ok: true,
      summary: { sourceModel: parsed.sourceModel, rest: parsed.rest, tensors, hasExtraTensors: Object.keys(tensors).length > 2 },
    };
  } catch (error) {
    if (error instanceof SafetensorsError) return { ok: false, issues: [{ path: "__metadata__", message: error.message }] };
    throw error;
  }
}
