import type { UploadedPayload } from "@memory-exchange/shared";
import { MemoryExchangeError } from "./errors.js";

/** A safetensors file: in memory, or a stream read as it is sent (never buffered by the client). */
export type PayloadBody = Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>;

export interface PayloadUploadOptions {
  signal?: AbortSignal;
}

/** Whose payload to download: a memory (its seller or a buyer), or a chain for one of your uses. */
export type PayloadTarget = { memoryId: number } | { chainId: number; transactionId?: number };

/** A byte range: `{ start, end? }` (end inclusive, default: the last byte) or the last `suffix` bytes. */
export type ByteRangeRequest = { start: number; end?: number } | { suffix: number };

export interface PayloadDownloadOptions {
  range?: ByteRangeRequest;
  /** The digest you already hold: the service answers `notModified` without a body when it matches. */
  ifNoneMatch?: string;
  signal?: AbortSignal;
}

export interface PayloadDownload {
  /** 200 whole file, 206 the requested range, 304 not modified (ifNoneMatch matched; empty body). */
  status: 200 | 206 | 304;
  /** The payload's SHA-256 (its ETag). */
  digest: string;
  /** Size of the whole payload in bytes (null on 304). */
  size: number | null;
  /** Bytes in this response's body. */
  contentLength: number;
  /** The bytes this response carries, for 206 (end inclusive). */
  range?: { start: number; end: number };
  /** The body as it arrives (consume it once: here, or through arrayBuffer() / bytes()). */
  body: ReadableStream<Uint8Array>;
  /** The whole body in memory. */
  arrayBuffer(): Promise<ArrayBuffer>;
  bytes(): Promise<Uint8Array>;
}

export interface PayloadsClient {
  /**
   * Uploads a safetensors KV-cache file (tensors `keys` and `values`, optional
   * `__metadata__.sourceModel`); a ReadableStream is streamed as it is read.
   * Publish it with `kvCacheRef: digest`.
   */
  upload(data: PayloadBody, options?: PayloadUploadOptions): Promise<UploadedPayload>;
  /** Downloads a payload as safetensors (streamed), optionally a byte range of it. */
  download(target: PayloadTarget, options?: PayloadDownloadOptions): Promise<PayloadDownload>;
}

export interface PayloadsClientConfig {
  /** the service's base URL */
  url: string;
  headers: () => Record<string, string>;
  fetch?: typeof globalThis.fetch;
}

/** The download path of a target (the same path the service answers as `payloadUrl`). */
export function payloadPath(target: PayloadTarget): string {
  if ("memoryId" in target) return `/api/v1/memory/${target.memoryId}/payload`;
  const query = target.transactionId === undefined ? "" : `?transaction_id=${target.transactionId}`;
  return `/api/v1/reasoning-chain/${target.chainId}/payload${query}`;
}

function rangeHeader(range: ByteRangeRequest): string {
  if ("suffix" in range) return `bytes=-${range.suffix}`;
  return `bytes=${range.start}-${range.end ?? ""}`;
}

async function failure(response: Response): Promise<MemoryExchangeError> {
  const text = await response.text().catch(() => "");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: text || response.statusText };
  }
  return MemoryExchangeError.fromEnvelope(response.status, body);
}

const unquote = (etag: string | null) => (etag ?? "").replace(/^W\//, "").replace(/^"|"$/g, "");

/** Binary payload transfers over the REST routes (`PUT /api/v1/payloads`, `GET …/payload`). */
export function createPayloadsClient(config: PayloadsClientConfig): PayloadsClient {
  const base = config.url.replace(/\/+$/, "");
  const doFetch = (input: string, init: RequestInit) => (config.fetch ?? globalThis.fetch)(input, init);

  return {
    async upload(data, options = {}) {
      const streamed = typeof ReadableStream !== "undefined" && data instanceof ReadableStream;
      const init: RequestInit & { duplex?: "half" } = {
        method: "PUT",
        headers: { ...config.headers(), "content-type": "application/octet-stream" },
        body: data as NonNullable<RequestInit["body"]>,
        ...(streamed ? { duplex: "half" } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      };
      const response = await doFetch(`${base}/api/v1/payloads`, init);
      if (!response.ok) throw await failure(response);
      const envelope = (await response.json()) as { data: UploadedPayload };
      return envelope.data;
    },

    async download(target, options = {}) {
      const headers: Record<string, string> = { ...config.headers() };
      if (options.range) headers.range = rangeHeader(options.range);
      if (options.ifNoneMatch) headers["if-none-match"] = `"${options.ifNoneMatch}"`;
      const response = await doFetch(`${base}${payloadPath(target)}`, {
        method: "GET",
        headers,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (response.status !== 200 && response.status !== 206 && response.status !== 304) throw await failure(response);
      const status = response.status as 200 | 206 | 304;
      const contentLength = status === 304 ? 0 : Number(response.headers.get("content-length") ?? "0");
      const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
      const size = status === 200 ? contentLength : contentRange ? Number(contentRange[3]) : null;
      const body = response.body ?? new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
      return {
        status,
        digest: unquote(response.headers.get("etag")),
        size,
        contentLength,
        ...(status === 206 && contentRange ? { range: { start: Number(contentRange[1]), end: Number(contentRange[2]) } } : {}),
        body,
        arrayBuffer: () => new Response(body).arrayBuffer(),
        bytes: async () => new Uint8Array(await new Response(body).arrayBuffer()),
      };
    },
  };
}
