import { uploadedPayloadSchema } from "@memory-exchange/shared";
import { z } from "zod";
import type { OpenApiPaths } from "../http/rest/openapi.js";

/** OpenAPI path items of the binary payload routes (registered outside the JSON route table). */

const errorRef = (name: string) => ({ $ref: `#/components/responses/${name}` });
const envelopeSchema = { $ref: "#/components/schemas/ErrorEnvelope" };

const binary = (description: string) => ({
  description,
  headers: {
    ETag: { description: "the payload's SHA-256 in quotes", schema: { type: "string" } },
    "Content-Length": { schema: { type: "integer" } },
    "Accept-Ranges": { schema: { type: "string", const: "bytes" } },
  },
  content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } },
});

const uploaded = (description: string) => ({
  description,
  content: {
    "application/json": {
      schema: {
        type: "object",
        required: ["success", "data"],
        properties: { success: { type: "boolean", const: true }, data: z.toJSONSchema(uploadedPayloadSchema, { target: "draft-2020-12" }) },
      },
    },
  },
});

const downloadParameters = [
  { name: "id", in: "path", required: true, schema: { type: "integer", minimum: 1 } },
  { name: "Range", in: "header", required: false, description: "one byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`", schema: { type: "string" } },
  { name: "If-None-Match", in: "header", required: false, description: "the ETag you hold: 304 when it matches", schema: { type: "string" } },
  { name: "If-Range", in: "header", required: false, description: "apply Range only while the ETag still matches", schema: { type: "string" } },
];

const downloadResponses = {
  200: binary("The whole safetensors file"),
  206: binary("The requested byte range (`Content-Range: bytes a-b/size`)"),
  304: { description: "Not modified: the If-None-Match digest matches" },
  400: errorRef("InvalidInput"),
  401: errorRef("Unauthenticated"),
  403: errorRef("Forbidden"),
  404: errorRef("NotFound"),
  416: { description: "The range lies outside the payload (`RANGE_NOT_SATISFIABLE`, `Content-Range: bytes */size`)", content: { "application/json": { schema: envelopeSchema } } },
  500: errorRef("Internal"),
  503: errorRef("Unavailable"),
};

export function payloadOpenApiPaths(): OpenApiPaths {
  return {
    "/api/v1/payloads": {
      put: {
        operationId: "uploadPayload",
        tags: ["payloads"],
        summary: "Upload a KV-cache safetensors file (streamed)",
        description:
          "The body is a safetensors file with tensors `keys` and `values` (same shape, F16/BF16/F32/F64, finite values); other tensors are kept; " +
          "`__metadata__.sourceModel` names the model. It is hashed and stored in 1 MiB chunks as it arrives. Publish it with `kv_cache_ref: <digest>`; " +
          "only your own uploads are accepted. The same bytes are stored once (200 instead of 201). Scope `trade`; size limit MEMORY_EXCHANGE_MAX_UPLOAD_MB.",
        requestBody: {
          required: true,
          content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } },
        },
        responses: {
          201: uploaded("Stored"),
          200: uploaded("These bytes were already stored; you are now an owner too"),
          400: errorRef("InvalidInput"),
          401: errorRef("Unauthenticated"),
          403: errorRef("Forbidden"),
          413: errorRef("PayloadTooLarge"),
          415: errorRef("UnsupportedMediaType"),
          500: errorRef("Internal"),
          503: errorRef("Unavailable"),
        },
      },
    },
    "/api/v1/memory/{id}/payload": {
      get: {
        operationId: "downloadMemoryPayload",
        tags: ["payloads"],
        summary: "Download a memory's payload as safetensors (its seller and buyers)",
        parameters: downloadParameters,
        responses: downloadResponses,
      },
    },
    "/api/v1/reasoning-chain/{id}/payload": {
      get: {
        operationId: "downloadChainPayload",
        tags: ["payloads"],
        summary: "Download a reasoning chain's payload as safetensors (its creator, or a user naming one of their uses)",
        parameters: [
          ...downloadParameters,
          { name: "transaction_id", in: "query", required: false, description: "your use of the chain (the `payload_url` of a use carries it)", schema: { type: "integer", minimum: 1 } },
        ],
        responses: downloadResponses,
      },
    },
  };
}
