import { Code, ConnectError } from "@connectrpc/connect";
import { bearerToken } from "@flip/shared/auth/keys.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { Database } from "../db/database.js";
import type { Trust } from "../trusts/entities.js";
import { authenticateTrustKey } from "../trusts/registry.js";

/**
 * The trust calling an ArtifactService RPC. The policy table marks these RPCs "trust-key", so the
 * authentication interceptor lets them through and each call checks the trust API key here.
 */
export async function authenticateTrust(db: Database, header: Headers, log: Logger, rpc: string): Promise<Trust> {
  const key = bearerToken(header);
  if (!key) throw new ConnectError("send the trust API key as 'Authorization: Bearer <key>'", Code.Unauthenticated);
  const check = await authenticateTrustKey(db.em(), key);
  if (check.ok) return check.trust;
  // Never log the key; the reason is enough for an operator.
  log.info({ rpc, reason: check.reason }, "artifact call with a refused trust key");
  if (check.reason === "disabled") throw new ConnectError("this trust is disabled at the hub", Code.PermissionDenied);
  throw new ConnectError("the trust API key is not valid (wrong, rotated or revoked)", Code.Unauthenticated);
}
