import { randomBytes } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";

/** The smallest pseudonym key accepted: 256 bits. */
export const MIN_KEY_BYTES = 32;

/** The pseudonym key file is missing, unreadable, too short, or readable by others. */
export class PseudonymKeyError extends Error {
  override readonly name = "PseudonymKeyError";
}

/**
 * The trust's secret for pseudonyms (HMAC key). Made once (32 random bytes, hex, mode 0600) when the file
 * does not exist; afterwards read back, so pseudonyms stay the same across restarts. Losing it means
 * re-imports get new pseudonyms: back it up with the service's database.
 */
export async function loadOrCreatePseudonymKey(file: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new PseudonymKeyError(`cannot read the pseudonym key ${file}: ${(e as Error).message}`);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    text = randomBytes(MIN_KEY_BYTES).toString("hex");
    await writeFile(file, text + "\n", { mode: 0o600, flag: "wx" }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
      text = await readFile(file, "utf8"); // another process made it first
    });
  }
  const mode = (await stat(file)).mode & 0o077;
  if (mode !== 0) throw new PseudonymKeyError(`the pseudonym key ${file} is readable by other users (mode ${((await stat(file)).mode & 0o777).toString(8)}); chmod 600 it`);
  const key = Buffer.from(text.trim(), "hex");
  if (key.length < MIN_KEY_BYTES || !/^[0-9a-f]+$/i.test(text.trim())) throw new PseudonymKeyError(`the pseudonym key ${file} must hold at least ${MIN_KEY_BYTES} bytes as hex (e.g. openssl rand -hex 32)`);
  return key;
}
