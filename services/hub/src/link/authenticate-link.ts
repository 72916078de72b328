import { Code, ConnectError } from "@connectrpc/connect";
import { bearerToken } from "@flip/shared/auth/keys.js";
import type { EntityManager } from "../db/database.js";
import { authenticateTrustKey } from "../trusts/registry.js";

/** The trust a stream speaks for, with the key hash it authenticated with (to notice a rotation). */
export interface LinkedTrust {
  id: string;
  code: string;
  name: string;
  keyHash: string;
}

/**
 * Checks the trust API key a gateway presents. The auth interceptor lets LinkService through
 * ("trust-key" policy) because trust keys are not user tokens; this is where they are checked.
 */
export async function authenticateLink(em: EntityManager, header: Headers): Promise<LinkedTrust> {
  const key = bearerToken(header);
  if (!key) throw new ConnectError("send the trust API key as 'Authorization: Bearer <key>'", Code.Unauthenticated);
  const check = await authenticateTrustKey(em, key);
  // "disabled" is only reported to a caller holding the trust's valid key.
  if (!check.ok) throw linkRefused(check.reason === "disabled");
  return { id: check.trust.id, code: check.trust.code, name: check.trust.name, keyHash: check.trust.keyHash };
}

/** The error a gateway gets when its key is not (or no longer) valid, or its trust is disabled. */
export function linkRefused(disabled: boolean): ConnectError {
  return disabled
    ? new ConnectError("this trust is disabled at the hub; ask the hub admin to enable it", Code.PermissionDenied)
    : new ConnectError("the trust API key is not valid (wrong, rotated or revoked); configure the trust's current key", Code.Unauthenticated);
}
