import type { EntityManager } from "@mikro-orm/postgresql";
import { issueKey, parseKey, secretMatches } from "@flip/shared/auth/keys.js";
import { appendAudit } from "../audit/chain.js";
import { InvalidInputError, NotFoundError } from "../domain/errors.js";
import { ApiTokenRecord, User } from "./entities.js";
import { AuthenticationError } from "./errors.js";
import { isUuid } from "./user-lookup.js";

export const DEFAULT_API_TOKEN_DAYS = 90;
export const MAX_API_TOKEN_DAYS = 365;
/** last_used_at is written at most this often per token, so busy scripts do not write on every call. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** Personal API tokens: `flip_user_<keyId>_<secret>`, shown once; the hub keeps SHA-256 of the secret. */
export async function createApiToken(
  em: EntityManager,
  actor: string,
  userId: string,
  input: { name: string; ttlDays: number },
  now: Date,
): Promise<{ token: ApiTokenRecord; secret: string }> {
  const name = input.name.trim();
  if (name === "" || name.length > 64) throw new InvalidInputError("name", "must be 1 to 64 characters (e.g. \"laptop CLI\")");
  if (input.ttlDays > MAX_API_TOKEN_DAYS) throw new InvalidInputError("ttl_days", `must be at most ${MAX_API_TOKEN_DAYS}`);
  const days = input.ttlDays === 0 ? DEFAULT_API_TOKEN_DAYS : input.ttlDays;
  return await em.transactional(async (tx) => {
    const key = issueKey("user");
    const token = tx.create(ApiTokenRecord, { userId, name, keyId: key.keyId, secretHash: key.secretHash, createdAt: now, expiresAt: new Date(now.getTime() + days * 86_400_000) });
    tx.persist(token);
    await tx.flush();
    await appendAudit(tx, { actor, action: "api_token.created", target: `user:${userId}`, after: auditView(token) });
    return { token, secret: key.key };
  });
}

export async function listApiTokens(em: EntityManager, userId: string): Promise<ApiTokenRecord[]> {
  return await em.find(ApiTokenRecord, { userId }, { orderBy: { createdAt: "desc" } });
}

/**
 * Revokes a token; idempotent. A token the caller may not touch is reported as not found, so token ids of
 * other users cannot be probed.
 */
export async function revokeApiToken(em: EntityManager, actor: string, caller: { userId: string | undefined; isAdmin: boolean }, tokenId: string): Promise<void> {
  if (!isUuid(tokenId)) throw new InvalidInputError("token_id", "is not a token id (a UUID from ListApiTokens)");
  await em.transactional(async (tx) => {
    const token = await tx.findOne(ApiTokenRecord, { id: tokenId });
    if (!token || (!caller.isAdmin && token.userId !== caller.userId)) throw new NotFoundError("API token", tokenId);
    if (token.revokedAt) return;
    token.revokedAt = new Date();
    await tx.flush();
    await appendAudit(tx, { actor, action: "api_token.revoked", target: `user:${token.userId}`, after: auditView(token) });
  });
}

/** Revokes every live token of a user (when the user is disabled); returns how many. */
export async function revokeUserApiTokens(tx: EntityManager, userId: string): Promise<number> {
  const rows = await tx.execute<unknown[]>("update api_token set revoked_at = now() where user_id = ? and revoked_at is null returning id", [userId]);
  return rows.length;
}

/** True for strings shaped like a personal API token (routing only). */
export function isApiToken(token: string): boolean {
  return token.startsWith("flip_user_");
}

/** Checks a presented API token and returns its user; throws AuthenticationError saying why not. */
export async function authenticateApiToken(em: EntityManager, presented: string, now: Date): Promise<User> {
  const parsed = parseKey(presented, "user");
  if (!parsed) throw new AuthenticationError("the API token is malformed; copy it again from `flip token create`");
  const token = await em.findOne(ApiTokenRecord, { keyId: parsed.keyId });
  if (!token || !secretMatches(parsed.secret, token.secretHash)) throw new AuthenticationError("the API token is not valid");
  if (token.revokedAt) throw new AuthenticationError("the API token was revoked; create a new one");
  if (token.expiresAt <= now) throw new AuthenticationError("the API token has expired; create a new one");
  if (!token.lastUsedAt || now.getTime() - token.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
    await em.execute("update api_token set last_used_at = ? where id = ?", [now, token.id]);
  }
  return await em.findOneOrFail(User, { id: token.userId });
}

function auditView(t: ApiTokenRecord) {
  return { id: t.id, name: t.name, keyId: t.keyId, expiresAt: t.expiresAt.toISOString(), revoked: Boolean(t.revokedAt) };
}
