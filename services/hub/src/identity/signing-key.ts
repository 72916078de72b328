import { createHash, randomBytes } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";

/** The HMAC key that signs access tokens, shared by every hub replica through the database. */
export interface SigningKey {
  /** Public id in each token's header, so a future rotation can tell keys apart. */
  kid: string;
  secret: Buffer;
}

const SESSION_KEY_NAME = "session-signing-key";

/**
 * Loads the access-token signing key, creating it on the very first start. Replicas that start together
 * race on the insert; `on conflict do nothing` lets exactly one win and all read the winner's key.
 */
export async function loadSigningKey(em: EntityManager): Promise<SigningKey> {
  await em.execute("insert into hub_secret (name, secret) values (?, ?) on conflict (name) do nothing", [SESSION_KEY_NAME, randomBytes(32)]);
  const [row] = await em.execute<{ secret: Buffer }[]>("select secret from hub_secret where name = ?", [SESSION_KEY_NAME]);
  if (!row) throw new Error("hub_secret has no session signing key after inserting one");
  const secret = Buffer.from(row.secret);
  return { kid: createHash("sha256").update(secret).digest("hex").slice(0, 16), secret };
}
