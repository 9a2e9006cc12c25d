import { createTRPCClient, httpBatchLink, httpLink, splitLink, type TRPCClient, type TRPCLink } from "@trpc/client";
import type { AppRouter } from "@memory-exchange/server/router";
import { observable } from "@trpc/server/observable";
import superjson from "superjson";
import { MemoryExchangeError } from "./errors.js";
import { createPayloadsClient, type PayloadsClient } from "./payloads.js";

export interface MemoryExchangeClientOptions {
  /** Base URL of the service, e.g. `http://localhost:8080` (the client calls `<url>/trpc`). */
  url: string;
  /** An API key (`mx_…`). */
  apiKey: string;
  /** With an admin key: act for this user of the main app (sent as `X-User-Id`). */
  actAsUserId?: number;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof globalThis.fetch;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
}

/** Rethrows every failure as a MemoryExchangeError carrying the machine code. */
const typedErrors: TRPCLink<AppRouter> = () => ({ next, op }) =>
  observable((observer) =>
    next(op).subscribe({
      next: (value) => observer.next(value),
      error: (error) => observer.error(MemoryExchangeError.from(error) as never),
      complete: () => observer.complete(),
    }),
  );

/**
 * A fully typed client for the Memory Exchange tRPC API: queries and
 * mutations are batched; large payload calls (publish, purchase, use) go
 * unbatched so one big body never delays the others.
 */
export function createMemoryExchangeClient(options: MemoryExchangeClientOptions): MemoryExchangeClient {
  const url = `${options.url.replace(/\/+$/, "")}/trpc`;
  const headers = () => ({
    ...options.headers,
    authorization: `Bearer ${options.apiKey}`,
    ...(options.actAsUserId !== undefined ? { "x-user-id": String(options.actAsUserId) } : {}),
  });
  const common = { url, headers, transformer: superjson, ...(options.fetch ? { fetch: options.fetch } : {}) };
  const trpc = createTRPCClient<AppRouter>({
    links: [
      typedErrors,
      splitLink({
        condition: (op) => op.type === "mutation",
        true: httpLink(common),
        false: httpBatchLink({ ...common, maxURLLength: 4000 }),
      }),
    ],
  });
  const payloads = createPayloadsClient({ url: options.url, headers, ...(options.fetch ? { fetch: options.fetch } : {}) });
  // The tRPC client is a proxy that reads every property as a procedure path, so `payloads` is served by a wrapping proxy.
  return new Proxy(trpc, {
    get: (target, property, receiver) => (property === "payloads" ? payloads : Reflect.get(target, property, receiver)),
  }) as MemoryExchangeClient;
}

/** The typed tRPC client plus `payloads`: streamed safetensors upload and download. */
export type MemoryExchangeClient = TRPCClient<AppRouter> & { readonly payloads: PayloadsClient };
