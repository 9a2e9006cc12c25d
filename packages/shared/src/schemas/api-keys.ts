import { z } from "zod";
import { idSchema } from "./common.js";

export const SCOPES = ["read", "trade", "admin"] as const;
export const scopeSchema = z.enum(SCOPES, { error: `must be one of ${SCOPES.join(", ")}` });
export type Scope = z.infer<typeof scopeSchema>;
export const DEFAULT_SCOPES: Scope[] = ["read", "trade"];

export const createApiKeyInput = z.object({
  userId: idSchema,
  name: z.string().trim().min(1).max(100, "must be at most 100 characters").default("default"),
  scopes: z.array(scopeSchema).min(1, "must name at least one scope").default(DEFAULT_SCOPES),
  expiresAt: z.date().optional(),
});

export const apiKeySchema = z.object({
  id: z.number().int(),
  userId: z.number().int(),
  name: z.string(),
  /** first characters of the key, for recognising it; the key itself is never stored */
  prefix: z.string(),
  scopes: z.array(scopeSchema),
  createdAt: z.date(),
  lastUsedAt: z.date().nullable(),
  expiresAt: z.date().nullable(),
  revokedAt: z.date().nullable(),
});
export type ApiKey = z.infer<typeof apiKeySchema>;

export const createApiKeyOutput = apiKeySchema.extend({
  /** the secret, shown once */
  key: z.string(),
});

export const listApiKeysInput = z.object({ userId: idSchema.optional() }).default({});
export const listApiKeysOutput = z.object({ keys: z.array(apiKeySchema) });
export const revokeApiKeyInput = z.object({ id: idSchema });
export const revokeApiKeyOutput = z.object({ id: z.number().int(), revoked: z.boolean() });

export const healthOutput = z.object({
  status: z.literal("ok"),
  service: z.literal("memory-exchange"),
  version: z.string(),
});
