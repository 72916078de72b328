import { createHash, randomBytes } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Logger } from "@flip/shared/logging/logger.js";
import { appendAudit } from "../audit/chain.js";
import type { Database } from "../db/database.js";
import { notify } from "../db/notifier.js";

/** An HMAC key that signs access tokens, shared by every hub replica through the database. */
export interface SigningKey {
  /** Public id in each token's header, so verification picks the right key after a rotation. */
  kid: string;
  secret: Buffer;
}

/** The key that signs, and the one it replaced, which still verifies the tokens it signed. */
export interface SigningKeys {
  current: SigningKey;
  previous: SigningKey | undefined;
}

const CURRENT = "session-signing-key";
const PREVIOUS = "session-signing-key-previous";
/** NOTIFY channel that tells every replica to reload the keys after a rotation. */
export const SIGNING_KEY_CHANNEL = "flip_signing_key";

function keyOf(secret: Buffer): SigningKey {
  return { kid: createHash("sha256").update(secret).digest("hex").slice(0, 16), secret };
}

/**
 * Loads the access-token signing keys, creating the first on the very first start. Replicas that start
 * together race on the insert; `on conflict do nothing` lets exactly one win and all read the winner's key.
 */
export async function loadSigningKeys(em: EntityManager): Promise<SigningKeys> {
  await em.execute("insert into hub_secret (name, secret) values (?, ?) on conflict (name) do nothing", [CURRENT, randomBytes(32)]);
  const rows = await em.execute<{ name: string; secret: Buffer }[]>("select name, secret from hub_secret where name in (?, ?)", [CURRENT, PREVIOUS]);
  const current = rows.find((r) => r.name === CURRENT);
  if (!current) throw new Error("hub_secret has no session signing key after inserting one");
  const previous = rows.find((r) => r.name === PREVIOUS);
  return { current: keyOf(Buffer.from(current.secret)), previous: previous ? keyOf(Buffer.from(previous.secret)) : undefined };
}

/**
 * Replaces the signing key. The replaced key is kept to verify the tokens it signed (they expire within the
 * access-token lifetime) unless `revokePrevious`; a key replaced twice is gone either way. Audited, and every
 * replica hears of it on commit.
 */
export async function rotateSigningKey(em: EntityManager, actor: string, revokePrevious: boolean): Promise<SigningKeys> {
  return await em.transactional(async (tx) => {
    // Serialises rotations: two at once would otherwise both demote the same key, or deadlock on the
    // key rows (one renaming CURRENT while the other inserts it). The row lock below then only reads.
    await tx.execute("select pg_advisory_xact_lock(hashtext('flip.signing-key-rotation'))");
    const [locked] = await tx.execute<{ secret: Buffer }[]>("select secret from hub_secret where name = ? for update", [CURRENT]);
    const replaced = locked ? keyOf(Buffer.from(locked.secret)) : undefined;
    await tx.execute("delete from hub_secret where name = ?", [PREVIOUS]);
    if (replaced && !revokePrevious) await tx.execute("update hub_secret set name = ? where name = ?", [PREVIOUS, CURRENT]);
    else await tx.execute("delete from hub_secret where name = ?", [CURRENT]);
    const current = keyOf(randomBytes(32));
    await tx.execute("insert into hub_secret (name, secret) values (?, ?)", [CURRENT, current.secret]);
    await appendAudit(tx, {
      actor,
      action: "identity.signing_key_rotated",
      target: "platform",
      before: { keyId: replaced?.kid ?? null },
      after: { keyId: current.kid, previousKeyAccepted: Boolean(replaced && !revokePrevious) },
    });
    await notify(tx, SIGNING_KEY_CHANNEL, current.kid);
    return { current, previous: revokePrevious ? undefined : replaced };
  });
}

/** How often at most a token naming an unknown key makes this replica re-read the keys. */
const RELOAD_ON_UNKNOWN_KID_MS = 1_000;

/**
 * This replica's copy of the signing keys. A rotation anywhere reaches it through NOTIFY; a token that
 * names a key it does not hold (signed by a replica that heard first) makes the caller ask for a re-read,
 * granted at most once a second, so a forged `kid` cannot turn into a query per request.
 */
export class SigningKeyRing {
  private keys: SigningKeys | undefined;
  private lastLoadAt = 0;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.reload();
    this.unsubscribe = await this.db.notifier.subscribe(SIGNING_KEY_CHANNEL, () => {
      this.reload().catch((err: unknown) => this.log.warn({ err }, "could not reload the signing keys after a rotation; retrying when a token names the new key"));
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  async reload(): Promise<void> {
    this.lastLoadAt = Date.now();
    const before = this.keys?.current.kid;
    this.keys = await loadSigningKeys(this.db.em());
    if (before && before !== this.keys.current.kid) this.log.info({ keyId: this.keys.current.kid, previousKeyId: this.keys.previous?.kid }, "access-token signing key rotated");
  }

  /** The key that signs new tokens. */
  signing(): SigningKey {
    if (!this.keys) throw new Error("the signing keys are used before start()");
    return this.keys.current;
  }

  /** The keys that verify tokens: the current key and the one it replaced. */
  verifying(): SigningKey[] {
    if (!this.keys) throw new Error("the signing keys are used before start()");
    return [this.keys.current, ...(this.keys.previous ? [this.keys.previous] : [])];
  }

  /** Re-reads the keys after a token named one this replica does not hold; false when it re-read them too recently. */
  async reloadAfterUnknownKey(): Promise<boolean> {
    if (Date.now() - this.lastLoadAt < RELOAD_ON_UNKNOWN_KID_MS) return false;
    await this.reload();
    return true;
  }
}
