import { z } from "zod";
import { DTYPES } from "../tensor/index.js";

/** A payload's content address: the SHA-256 of its safetensors bytes, 64 lower-case hex digits. */
export const payloadDigestSchema = z
  .string({ error: "must be a payload digest (64 hex digits)" })
  .trim()
  .toLowerCase()
  .regex(/^[0-9a-f]{64}$/, "must be a payload digest (64 hex digits, the SHA-256 returned by the upload)");

/** Exactly one of `data` and `ref` names the payload: inline JSON, or the digest of an earlier upload. */
export function requireOnePayload(data: string, ref: string) {
  return <T extends object>(value: T, ctx: z.RefinementCtx<T>) => {
    const given = [data, ref].filter((key) => (value as Record<string, unknown>)[key] !== undefined);
    if (given.length === 1) return;
    const message = given.length === 0 ? `send ${data} (the KV cache) or ${ref} (the digest of an upload)` : `send either ${data} or ${ref}, not both`;
    ctx.addIssue({ code: "custom", message, path: [given.length === 0 ? data : ref] });
  };
}

export const payloadTensorInfoSchema = z.object({
  dtype: z.enum(DTYPES),
  shape: z.array(z.number().int()),
});

/** What `PUT /api/v1/payloads` answers: the digest to publish with as `kvCacheRef`. */
export const uploadedPayloadSchema = z.object({
  digest: z.string(),
  /** bytes of the stored safetensors file */
  size: z.number().int(),
  tensors: z.record(z.string(), payloadTensorInfoSchema),
});
export type UploadedPayload = z.infer<typeof uploadedPayloadSchema>;
