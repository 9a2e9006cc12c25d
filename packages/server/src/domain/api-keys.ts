import { hash, randomBytes } from "node:crypto";
import type { ApiKey, Scope, createApiKeyInput } from "@memory-exchange/shared";
import type { z } from "zod";
import { DomainError, notFound } from "../errors.js";
import type { ApiKeyRow, Store } from "../store/store.js";

export const API_KEY_PREFIX = "mx_";
const DISPLAY_PREFIX_LENGTH = 11;

/** Who a request acts for: the key's own user, or (admin keys only) the user named by X-User-Id. */
export interface Principal {
  keyId: number;
  keyUserId: number;
  userId: number;
  scopes: Scope[];
}

/** SHA-256, hex: what the database stores of a key. (`crypto.hash`, one call: ~0.3 µs against ~0.7 µs for a Hash object, on every authenticated request.) */
export const hashApiKey = (key: string) => hash("sha256", key, "hex");

function toApiKey(row: ApiKeyRow): ApiKey {
  const { keyHash: _hash, ...rest } = row;
  return rest;
}

/** Mints a key: `mx_` + 192 random bits. Only its SHA-256 and a display prefix are stored. */
export async function createApiKey(store: Store, input: z.output<typeof createApiKeyInput>): Promise<ApiKey & { key: string }> {
  const key = API_KEY_PREFIX + randomBytes(24).toString("base64url");
  const row = await store.insertApiKey({
    userId: input.userId,
    name: input.name,
    keyHash: hashApiKey(key),
    prefix: key.slice(0, DISPLAY_PREFIX_LENGTH),
    scopes: [...new Set(input.scopes)],
    expiresAt: input.expiresAt ?? null,
  });
  return { ...toApiKey(row), key };
}

export async function listApiKeys(store: Store, userId?: number): Promise<ApiKey[]> {
  return (await store.listApiKeys(userId)).map(toApiKey);
}

export async function revokeApiKey(store: Store, verifier: ApiKeyVerifier, id: number): Promise<{ id: number; revoked: boolean }> {
  const existing = await store.findApiKey(id);
  if (!existing) throw notFound(`API key ${id}`);
  const revoked = await store.revokeApiKey(id, new Date());
  verifier.forget(id);
  return { id, revoked };
}

interface CacheEntry {
  row: ApiKeyRow | null;
  expiresAt: number;
}

/**
 * Verifies keys by hash with a small in-memory cache in front of the store.
 * Revocation through this process drops the entry at once, and a lookup that
 * was in flight when it happened is not cached; other instances see it within
 * `ttlMs`. Concurrent misses of one key share one lookup (an entry expiring
 * under load would otherwise send every request in flight to the database).
 * `last_used_at` is written in batches, not per request.
 */
export class ApiKeyVerifier {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly lookups = new Map<string, { row: Promise<ApiKeyRow | null>; generation: number }>();
  /** bumped by every revocation: a lookup that began before it must not be cached or shared after it */
  private generation = 0;
  private readonly used = new Set<number>();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly options: { ttlMs: number; maxEntries?: number; touchIntervalMs?: number },
  ) {
    const interval = options.touchIntervalMs ?? 15_000;
    if (interval > 0) {
      this.timer = setInterval(() => void this.flushUsage().catch(() => undefined), interval);
      this.timer.unref();
    }
  }

  /** The key's row when it exists, is not revoked and has not expired; otherwise null. */
  async verify(key: string): Promise<ApiKeyRow | null> {
    if (!key.startsWith(API_KEY_PREFIX) || key.length > 200) return null;
    const hash = hashApiKey(key);
    const now = Date.now();
    const cached = this.cache.get(hash);
    const row = cached && cached.expiresAt > now ? cached.row : await this.lookup(hash, now);
    if (!row || row.revokedAt || (row.expiresAt && row.expiresAt.getTime() <= now)) return null;
    this.used.add(row.id);
    return row;
  }

  /** Drops a key from the cache (after revocation). */
  forget(keyId: number): void {
    this.generation++;
    for (const [hash, entry] of this.cache) if (entry.row?.id === keyId) this.cache.delete(hash);
  }

  async flushUsage(): Promise<void> {
    if (this.used.size === 0) return;
    const ids = [...this.used];
    this.used.clear();
    await this.store.touchApiKeys(ids, new Date());
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flushUsage().catch(() => undefined);
  }

  /** The store's row for a hash, one lookup per hash at a time; cached unless a revocation came while it ran. */
  private lookup(hash: string, now: number): Promise<ApiKeyRow | null> {
    const generation = this.generation;
    const running = this.lookups.get(hash);
    if (running?.generation === generation) return running.row;
    const row = this.store
      .findApiKeyByHash(hash)
      .then((found) => {
        if (this.options.ttlMs > 0 && generation === this.generation) this.remember(hash, { row: found, expiresAt: now + this.options.ttlMs });
        return found;
      })
      .finally(() => {
        if (this.lookups.get(hash)?.row === row) this.lookups.delete(hash);
      });
    this.lookups.set(hash, { row, generation });
    return row;
  }

  private remember(hash: string, entry: CacheEntry) {
    const max = this.options.maxEntries ?? 10_000;
    if (this.cache.size >= max) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(hash, entry);
  }
}

const hasScope = (scopes: Scope[], scope: Scope) => scopes.includes(scope) || scopes.includes("admin");

export function requireScope(principal: Principal, scope: Scope): void {
  if (!hasScope(principal.scopes, scope))
    throw new DomainError("FORBIDDEN", `This API key lacks the '${scope}' scope`);
}

/** The key a request presents: `Authorization: Bearer <key>`, else `X-API-Key: <key>`. */
export function presentedApiKey(header: (name: string) => string | undefined): string | undefined {
  const authorization = header("authorization");
  const bearer = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
  return bearer ?? (header("x-api-key")?.trim() || undefined);
}

/** Resolves the caller from `Authorization: Bearer`, `X-API-Key` and (admin keys) `X-User-Id`. */
export async function authenticate(verifier: ApiKeyVerifier, header: (name: string) => string | undefined): Promise<Principal> {
  const key = presentedApiKey(header);
  if (!key) throw new DomainError("UNAUTHENTICATED", "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'");
  const row = await verifier.verify(key);
  if (!row) throw new DomainError("UNAUTHENTICATED", "Invalid, revoked or expired API key");

  const actAs = header("x-user-id");
  let userId = row.userId;
  if (actAs !== undefined) {
    if (!row.scopes.includes("admin")) throw new DomainError("FORBIDDEN", "X-User-Id requires an API key with the 'admin' scope");
    const parsed = /^\s*(\d{1,10})\s*$/.exec(actAs);
    const value = parsed ? Number(parsed[1]) : NaN;
    if (!(value >= 1 && value <= 2_147_483_647))
      throw new DomainError("INVALID_INPUT", "X-User-Id: must be a positive integer user id", [
        { path: "X-User-Id", message: "must be a positive integer user id" },
      ]);
    userId = value;
  }
  return { keyId: row.id, keyUserId: row.userId, userId, scopes: row.scopes };
}
