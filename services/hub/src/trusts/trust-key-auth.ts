import { Code, ConnectError } from "@connectrpc/connect";
import { bearerToken } from "@flip/shared/auth/keys.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { EntityManager } from "../db/database.js";
import { authenticateTrustKey } from "./registry.js";

/** The trust a caller speaks for, with the key hash it authenticated with (a link notices a rotation by it). */
export interface AuthenticatedTrust {
  id: string;
  code: string;
  name: string;
  keyHash: string;
}

/**
 * Checks the trust API key a gateway presents, for every RPC the policy table marks "trust-key" (the
 * link and the artifact transfers): the authentication interceptor lets those through, because trust
 * keys are not user tokens, and each checks the key here. `rpc` names the call in the log line of a refusal.
 */
export async function authenticateTrustCaller(em: EntityManager, header: Headers, log: Logger, rpc: string): Promise<AuthenticatedTrust> {
  const key = bearerToken(header);
  if (!key) throw new ConnectError("send the trust API key as 'Authorization: Bearer <key>'", Code.Unauthenticated);
  const check = await authenticateTrustKey(em, key);
  if (!check.ok) {
    // Never the key; the reason is enough for an operator.
    log.info({ rpc, reason: check.reason }, "trust key refused");
    // "disabled" is only reported to a caller holding the trust's valid key.
    throw trustKeyRefused(check.reason === "disabled");
  }
  return { id: check.trust.id, code: check.trust.code, name: check.trust.name, keyHash: check.trust.keyHash };
}

/** The error a gateway gets when its key is not (or no longer) valid, or its trust is disabled. */
export function trustKeyRefused(disabled: boolean): ConnectError {
  return disabled
    ? new ConnectError("this trust is disabled at the hub; ask the hub admin to enable it", Code.PermissionDenied)
    : new ConnectError("the trust API key is not valid (wrong, rotated or revoked); configure the trust's current key", Code.Unauthenticated);
}
