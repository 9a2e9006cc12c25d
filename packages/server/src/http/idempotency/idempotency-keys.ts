import { gunzipSync, gzipSync } from "node:zlib";
import type { IdempotencyStore } from "./idempotency-store.js";

/** What a request carrying an Idempotency-Key does next. */
export type Claim =
  /** first request (or a retry after a released/abandoned attempt): execute, then complete or release */
  | { kind: "execute"; id: number; lockedAt: number }
  /** the first request finished: send its response again */
  | { kind: "replay"; statusCode: number; contentType: string | null; body: Buffer }
  /** the key was used with a different request */
  | { kind: "mismatch" }
  /** the first request is still executing */
  | { kind: "in_flight" };

export interface IdempotencyOptions {
  /** how long a key is remembered (Stripe: 24 h) */
  ttlMs: number;
  /** after this long an in-flight record counts as abandoned (crashed process) and may be taken over */
  leaseMs: number;
  now?: () => number;
  /** reports failures of the background sweep */
  onSweepError?: (error: unknown) => void;
}

const CHUNK_BYTES = 1024 * 1024;
const SWEEP_INTERVAL_MS = 60_000;
const SWEEP_BATCH = 500;

function chunk(bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; offset += CHUNK_BYTES) chunks.push(bytes.subarray(offset, offset + CHUNK_BYTES));
  return chunks.length > 0 ? chunks : [new Uint8Array(0)];
}

/**
 * Stripe's Idempotency-Key semantics over an IdempotencyStore: the first
 * request executes; a repeat with the same request replays its response; a
 * repeat with a different request, or one racing the first, is refused.
 * Records older than `ttlMs` are forgotten (deleted lazily).
 */
export class IdempotencyKeys {
  private lastSweep = 0;
  private readonly now: () => number;

  constructor(
    private readonly store: IdempotencyStore,
    private readonly options: IdempotencyOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async claim(keyId: number, key: string, requestHash: string): Promise<Claim> {
    const now = this.now();
    this.sweep(now);
    // A few rounds at most: each retry follows a delete by an expiry or a released attempt.
    for (let attempt = 0; attempt < 4; attempt++) {
      const id = await this.store.insert(keyId, key, requestHash, now);
      if (id !== null) return { kind: "execute", id, lockedAt: now };
      const record = await this.store.find(keyId, key);
      if (!record) continue;
      if (record.createdAt <= now - this.options.ttlMs) {
        await this.store.remove(record.id, record.createdAt);
        continue;
      }
      if (record.requestHash !== requestHash) return { kind: "mismatch" };
      if (record.state === "in_flight") {
        if (record.lockedAt <= now - this.options.leaseMs && (await this.store.relock(record.id, record.lockedAt, now)))
          return { kind: "execute", id: record.id, lockedAt: now };
        return { kind: "in_flight" };
      }
      const body = gunzipSync(Buffer.concat(await this.store.readChunks(record.id)));
      return { kind: "replay", statusCode: record.statusCode ?? 200, contentType: record.contentType, body };
    }
    return { kind: "in_flight" };
  }

  /** Records the response of an executed claim so repeats replay it. */
  async complete(claim: Extract<Claim, { kind: "execute" }>, statusCode: number, contentType: string | null, body: Uint8Array): Promise<boolean> {
    return this.store.complete(claim.id, claim.lockedAt, { statusCode, contentType, chunks: chunk(gzipSync(body)) });
  }

  /** Forgets an executed claim whose outcome must not be replayed (a 5xx): the client may retry with the same key. */
  async release(claim: Extract<Claim, { kind: "execute" }>): Promise<void> {
    await this.store.release(claim.id, claim.lockedAt);
  }

  private sweep(now: number) {
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    this.store.deleteExpired(now - this.options.ttlMs, SWEEP_BATCH).catch((error: unknown) => this.options.onSweepError?.(error));
  }
}
