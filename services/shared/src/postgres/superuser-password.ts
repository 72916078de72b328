import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import pg from "pg";
import type { Logger } from "../logging/logger.js";
import { EmbeddedPostgresError } from "./embedded-postgres-error.js";

/** The password every embedded data directory had before each got its own; such directories are upgraded. */
export const LEGACY_PASSWORD = "flip-embedded";

/** The superuser password of the data directory `dataDir` is kept beside it, readable only by FLIP's user. */
export function passwordFileFor(dataDir: string): string {
  return `${dataDir}.password`;
}

/** Reads the data directory's password, or makes a random one and writes it (0600) when there is none yet. */
export function readOrCreatePassword(file: string, log: Logger): string {
  try {
    if ((statSync(file).mode & 0o077) !== 0) {
      chmodSync(file, 0o600);
      log.warn({ file }, "the embedded PostgreSQL password file was readable by others: made it 0600");
    }
    const password = readFileSync(file, "utf8").trim();
    if (password) return password;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const password = randomBytes(24).toString("base64url");
  writeFileSync(file, password + "\n", { mode: 0o600 });
  // writeFileSync keeps the mode of a file that already existed (an empty one).
  chmodSync(file, 0o600);
  return password;
}

/**
 * Connects as the superuser with the data directory's password. A directory made before each had its
 * own still has LEGACY_PASSWORD: then its password is changed to the one in the file.
 */
export async function connectAsSuperuser(url: (password: string) => string, password: string, where: { dataDir: string; passwordFile: string }, log: Logger): Promise<pg.Client> {
  const first = new pg.Client({ connectionString: url(password) });
  try {
    await first.connect();
    return first;
  } catch (e) {
    await first.end().catch(() => undefined);
    if (!isWrongPassword(e)) throw e;
  }
  const legacy = new pg.Client({ connectionString: url(LEGACY_PASSWORD) });
  try {
    await legacy.connect();
  } catch (e) {
    await legacy.end().catch(() => undefined);
    if (!isWrongPassword(e)) throw e;
    throw new EmbeddedPostgresError(
      `the password in ${where.passwordFile} does not open the embedded PostgreSQL in ${where.dataDir}: put back the file made with that directory, or remove both to start afresh`,
      { cause: e },
    );
  }
  try {
    await legacy.query("set password_encryption = 'scram-sha-256'");
    await legacy.query(`alter role postgres with password ${legacy.escapeLiteral(password)}`);
  } catch (e) {
    await legacy.end().catch(() => undefined);
    throw e;
  }
  log.info({ dataDir: where.dataDir, passwordFile: where.passwordFile }, "embedded PostgreSQL had the old fixed password: gave it its own");
  return legacy;
}

function isWrongPassword(e: unknown): boolean {
  return (e as { code?: unknown }).code === "28P01";
}
