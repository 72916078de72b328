import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Logger } from "@flip/shared/logging/logger.js";

/**
 * Seals secrets the hub must read back (TOTP seeds) before they reach the database, so a database dump or
 * backup alone does not hand over anyone's second factor. AES-256-GCM with a key kept outside the database
 * (`FLIP_SECRETS_KEY_FILE`); the context (e.g. the user id) is authenticated too, so a sealed value copied
 * to another row does not open.
 */
export interface SecretSealer {
  /** True when values are actually sealed (a key is configured). */
  readonly sealing: boolean;
  seal(plain: string, context: string): string;
  open(stored: string, context: string): string;
}

const SEALED_PREFIX = "v1:";
const IV_BYTES = 12;
const TAG_BYTES = 16;

export const isSealed = (stored: string): boolean => stored.startsWith(SEALED_PREFIX);

export class SealedSecretError extends Error {
  override readonly name = "SealedSecretError";
}

export class AesGcmSealer implements SecretSealer {
  readonly sealing = true;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error("a secrets key is 32 bytes");
  }

  seal(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return SEALED_PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
  }

  open(stored: string, context: string): string {
    // Written by a replica started without the key (a misconfiguration the start-up check cannot see once
    // this replica runs): still usable; the next start with the key seals it.
    if (!isSealed(stored)) return stored;
    const raw = Buffer.from(stored.slice(SEALED_PREFIX.length), "base64url");
    if (raw.length < IV_BYTES + TAG_BYTES) throw new SealedSecretError("the sealed secret is truncated");
    const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString("utf8");
    } catch {
      throw new SealedSecretError("the sealed secret does not open with this key and context (wrong key, or the value was altered or moved)");
    }
  }

  /** Identifies the key without revealing it; stored in the database to catch replicas given different keys. */
  checkValue(): Buffer {
    return createHmac("sha256", this.key).update("flip secrets key check").digest();
  }
}

/** No key configured: values are stored as they are (the hub warns at start-up). */
export const plaintextSealer: SecretSealer = {
  sealing: false,
  seal: (plain) => plain,
  open(stored) {
    if (isSealed(stored)) throw new SealedSecretError("the stored secret is sealed but no FLIP_SECRETS_KEY_FILE is configured");
    return stored;
  },
};

/** Reads a key file (64 hex characters), creating it (0600) first when `create` and it does not exist. */
export function readSecretsKeyFile(file: string, create: boolean): Buffer {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT" || !create) {
      throw new Error(`FLIP_SECRETS_KEY_FILE: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}); create one with: openssl rand -hex 32 > ${file}`);
    }
    mkdirSync(path.dirname(file), { recursive: true });
    text = randomBytes(32).toString("hex");
    writeFileSync(file, `${text}\n`, { mode: 0o600, flag: "wx" });
  }
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`FLIP_SECRETS_KEY_FILE: ${file} must hold 64 hex characters (32 bytes); create one with: openssl rand -hex 32`);
  return Buffer.from(hex, "hex");
}

const KEY_CHECK_NAME = "secrets-key-check";

/** The columns that hold sealed secrets; the context of each is `totp:<user id>`. */
const SEALED_COLUMNS = ["totp_secret", "totp_pending_secret"] as const;
export const totpContext = (userId: string): string => `totp:${userId}`;

/**
 * Chooses the sealer at start-up and makes the database agree with it:
 * - with a key: the first hub to start records the key's check value; a replica with another key refuses
 *   to start (every replica needs the same file); secrets stored before the key was configured are sealed;
 * - without one: refuses to start when secrets were sealed before, else warns that they are stored as is.
 */
export async function prepareSecretSealer(em: EntityManager, key: Buffer | undefined, log: Logger): Promise<SecretSealer> {
  const [recorded] = await em.execute<{ secret: Buffer }[]>("select secret from hub_secret where name = ?", [KEY_CHECK_NAME]);
  if (!key) {
    if (recorded) throw new Error("this hub's database holds sealed TOTP secrets: set FLIP_SECRETS_KEY_FILE to the key file they were sealed with");
    log.warn("TOTP secrets are stored unencrypted: set FLIP_SECRETS_KEY_FILE (64 hex characters, the same file on every replica) to seal them");
    return plaintextSealer;
  }
  const sealer = new AesGcmSealer(key);
  const check = sealer.checkValue();
  await em.transactional(async (tx) => {
    // Insert, then compare with whatever is stored: two replicas starting at once with different keys
    // cannot both pass (the loser reads the winner's check value).
    await tx.execute("insert into hub_secret (name, secret) values (?, ?) on conflict (name) do nothing", [KEY_CHECK_NAME, check]);
    const [row] = await tx.execute<{ secret: Buffer }[]>("select secret from hub_secret where name = ?", [KEY_CHECK_NAME]);
    const stored = Buffer.from(row!.secret);
    if (stored.length !== check.length || !timingSafeEqual(stored, check)) {
      throw new Error("FLIP_SECRETS_KEY_FILE holds a different key from the one this database's secrets were sealed with: give every hub replica the same key file");
    }
    let sealed = 0;
    for (const column of SEALED_COLUMNS) {
      const rows = await tx.execute<{ id: string; value: string }[]>(
        `select id, ${column} as value from app_user where ${column} is not null and ${column} not like ? for update`,
        [`${SEALED_PREFIX}%`],
      );
      for (const r of rows) await tx.execute(`update app_user set ${column} = ? where id = ?`, [sealer.seal(r.value, totpContext(r.id)), r.id]);
      sealed += rows.length;
    }
    if (sealed > 0) log.info({ sealed }, "TOTP secrets stored before FLIP_SECRETS_KEY_FILE was set are now sealed");
  });
  return sealer;
}
