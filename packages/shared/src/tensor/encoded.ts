// Compact tensor form: {"dtype", "shape", "data": base64 of little-endian row-major bytes}.

import { z } from "zod";
import { base64DecodedLength, tryDecodeBase64 } from "./base64.js";
import { allFinite, DTYPES, dtypeByteSize, type Dtype } from "./dtype.js";
import { MAX_TENSOR_RANK, type TensorFailure, type TensorPath } from "./nested.js";

export const encodedTensorSchema = z.strictObject({
  dtype: z.enum(DTYPES, { error: `dtype must be one of ${DTYPES.join(", ")}` }),
  shape: z
    .array(z.int({ error: "dimensions must be integers" }).positive({ error: "dimensions must be positive" }))
    .min(1, { error: "shape needs at least one dimension" })
    .max(MAX_TENSOR_RANK, { error: `tensor rank exceeds the maximum of ${MAX_TENSOR_RANK}` }),
  data: z.string({ error: "data must be a base64 string" }),
});

export type EncodedTensor = z.infer<typeof encodedTensorSchema>;

export type EncodedAnalysis =
  | { ok: true; dtype: Dtype; shape: number[]; bytes: Uint8Array; elementCount: number }
  | TensorFailure;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Whether `value` claims to be the compact form (a plain object with a `dtype` key); nested tensors are arrays. */
export function isEncodedTensor(value: unknown): value is Record<string, unknown> & { dtype: unknown } {
  return isPlainObject(value) && Object.hasOwn(value, "dtype");
}

function invalid(path: TensorPath, message: string): TensorFailure {
  return { ok: false, path, message, code: "invalid" };
}

/**
 * Validates the compact form: schema, element limit (before decoding), exact
 * byte length for shape × dtype, strict canonical base64, finite values.
 */
export function analyzeEncoded(value: unknown, limits: { maxElements: number }): EncodedAnalysis {
  const parsed = encodedTensorSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return invalid(
      issue.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
      issue.message,
    );
  }
  const { dtype, shape, data } = parsed.data;
  let count = 1;
  for (const d of shape) count *= d;
  if (count > limits.maxElements) {
    return {
      ok: false,
      path: ["shape"],
      message: `tensor has ${count} elements, over the limit of ${limits.maxElements}`,
      code: "too_large",
    };
  }
  const size = dtypeByteSize(dtype);
  const expectedBytes = count * size;
  const where = `shape [${shape.join(", ")}] of ${dtype} needs ${expectedBytes} bytes`;
  if (data.length % 4 === 0 && base64DecodedLength(data) !== expectedBytes) {
    return invalid(["data"], `data decodes to ${base64DecodedLength(data)} bytes; ${where}`);
  }
  const decoded = tryDecodeBase64(data);
  if (!decoded.ok) return invalid(["data"], decoded.message);
  const finite = allFinite(dtype, decoded.bytes);
  if (!finite.ok) {
    return invalid(["data"], `element ${finite.index} is not a finite number (NaN or Infinity)`);
  }
  return { ok: true, dtype, shape, bytes: decoded.bytes, elementCount: count };
}
