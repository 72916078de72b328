import type { EntityManager } from "@mikro-orm/postgresql";
import { issueKey, parseKey, secretMatches } from "@flip/shared/auth/keys.js";
import { appendAudit } from "../audit/chain.js";
import { notify } from "../db/notifier.js";
import { AlreadyExistsError, InvalidInputError, NotFoundError } from "../domain/errors.js";
import type { Page } from "../domain/paging.js";
import { Trust } from "./entities.js";
import { isUuid } from "../domain/ids.js";

/** Channel on which the hub announces that a trust's key or status changed (payload: trust id). */
export const TRUST_CHANGED_CHANNEL = "flip_trust_changed";

const CODE_RE = /^[a-z][a-z0-9-]{1,31}$/;

export interface NewTrust {
  name: string;
  code: string;
  region: string;
}

function validateNewTrust(t: NewTrust): NewTrust {
  const name = t.name.trim();
  const region = t.region.trim();
  if (name.length < 2 || name.length > 120) throw new InvalidInputError("name", "must be 2 to 120 characters");
  if (!CODE_RE.test(t.code)) {
    throw new InvalidInputError("code", "must be 2 to 32 lower-case letters, digits or hyphens, starting with a letter (e.g. \"gstt\")");
  }
  if (region.length > 64) throw new InvalidInputError("region", "must be at most 64 characters");
  return { name, code: t.code, region };
}

/** The public view of a trust for the audit log (never the key hash). */
function auditView(t: Trust) {
  return { id: t.id, name: t.name, code: t.code, region: t.region, keyId: t.keyId, disabled: t.disabledAt !== null && t.disabledAt !== undefined };
}

/** Registers a trust and returns it with its API key (the only time the key exists outside the trust). */
export async function registerTrust(em: EntityManager, actor: string, input: NewTrust): Promise<{ trust: Trust; apiKey: string }> {
  const t = validateNewTrust(input);
  return await em.transactional(async (tx) => {
    const clash = await tx.findOne(Trust, { $or: [{ name: t.name }, { code: t.code }] });
    if (clash) {
      const field = clash.code === t.code ? `code "${t.code}"` : `name "${t.name}"`;
      throw new AlreadyExistsError(`a trust with ${field} is already registered`);
    }
    const key = issueKey("trust");
    const trust = tx.create(Trust, { name: t.name, code: t.code, region: t.region, keyId: key.keyId, keyHash: key.secretHash });
    tx.persist(trust);
    await tx.flush();
    await appendAudit(tx, { actor, action: "trust.registered", target: `trust:${trust.id}`, after: auditView(trust) });
    return { trust, apiKey: key.key };
  });
}

/** Finds a trust by id (UUID) or code. */
export async function findTrust(em: EntityManager, ref: string, field = "trust"): Promise<Trust> {
  if (ref.trim() === "") throw new InvalidInputError(field, "give a trust id or code");
  const trust = isUuid(ref) ? await em.findOne(Trust, { id: ref }) : await em.findOne(Trust, { code: ref });
  if (!trust) throw new NotFoundError("trust", ref);
  return trust;
}

/** What a caller naming many trusts needs of each. */
export interface TrustRef {
  id: string;
  code: string;
}

/**
 * Finds many trusts by id or code in one query, in the order given. A missing one is NotFound naming
 * it; an empty reference, or two naming the same trust, is InvalidInput naming its place.
 */
export async function findTrusts(em: EntityManager, refs: string[], field = "trusts"): Promise<TrustRef[]> {
  refs.forEach((ref, i) => {
    if (ref.trim() === "") throw new InvalidInputError(`${field}[${i}]`, "give a trust id or code");
  });
  const key = (ref: string) => (isUuid(ref) ? ref.toLowerCase() : ref);
  const found = await em.execute<TrustRef[]>(
    `select id, code from trust
     where id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
        or code in (select value from jsonb_array_elements_text(?::jsonb))`,
    // JSON, not arrays: execute() would spread a JavaScript array into a list.
    [JSON.stringify(refs.filter(isUuid).map(key)), JSON.stringify(refs.filter((r) => !isUuid(r)))],
  );
  const byRef = new Map(found.flatMap((t) => [[t.id, t] as const, [t.code, t] as const]));
  const seen = new Map<string, number>();
  return refs.map((ref, i) => {
    const trust = byRef.get(key(ref));
    if (!trust) throw new NotFoundError("trust", ref);
    const first = seen.get(trust.id);
    if (first !== undefined) throw new InvalidInputError(`${field}[${i}]`, `names trust "${trust.code}" again (as ${field}[${first}] did); give each trust once`);
    seen.set(trust.id, i);
    return trust;
  });
}

export async function listTrusts(em: EntityManager, page: Page, includeDisabled: boolean): Promise<Trust[]> {
  return await em.find(Trust, includeDisabled ? {} : { disabledAt: null }, { orderBy: { code: "asc" }, offset: page.offset, limit: page.limit });
}

/** Issues a new key; the old one stops working at once, and open links of the trust are cut. */
export async function rotateTrustKey(em: EntityManager, actor: string, ref: string): Promise<{ trust: Trust; apiKey: string }> {
  return await em.transactional(async (tx) => {
    const trust = await findTrust(tx, ref);
    const before = auditView(trust);
    const key = issueKey("trust");
    trust.keyId = key.keyId;
    trust.keyHash = key.secretHash;
    await tx.flush();
    await appendAudit(tx, { actor, action: "trust.key_rotated", target: `trust:${trust.id}`, before, after: auditView(trust) });
    await notify(tx, TRUST_CHANGED_CHANNEL, trust.id);
    return { trust, apiKey: key.key };
  });
}

/** Disables or re-enables a trust; idempotent (no audit entry when nothing changes). */
export async function setTrustDisabled(em: EntityManager, actor: string, ref: string, disabled: boolean, reason = ""): Promise<Trust> {
  return await em.transactional(async (tx) => {
    const trust = await findTrust(tx, ref);
    const isDisabled = trust.disabledAt !== null && trust.disabledAt !== undefined;
    if (isDisabled === disabled) return trust;
    const before = auditView(trust);
    trust.disabledAt = disabled ? new Date() : null;
    await tx.flush();
    await appendAudit(tx, {
      actor,
      action: disabled ? "trust.disabled" : "trust.enabled",
      target: `trust:${trust.id}`,
      before,
      after: { ...auditView(trust), ...(reason ? { reason } : {}) },
    });
    await notify(tx, TRUST_CHANGED_CHANNEL, trust.id);
    return trust;
  });
}

export type KeyCheck = { ok: true; trust: Trust } | { ok: false; reason: "malformed" | "unknown" | "disabled" };

/** Checks a presented trust API key: found by its public id, compared in constant time. */
export async function authenticateTrustKey(em: EntityManager, apiKey: string): Promise<KeyCheck> {
  const parsed = parseKey(apiKey, "trust");
  if (!parsed) return { ok: false, reason: "malformed" };
  const trust = await em.findOne(Trust, { keyId: parsed.keyId });
  if (!trust || !secretMatches(parsed.secret, trust.keyHash)) return { ok: false, reason: "unknown" };
  if (trust.disabledAt) return { ok: false, reason: "disabled" };
  return { ok: true, trust };
}
