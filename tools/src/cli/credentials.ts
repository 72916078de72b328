import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** Where `flip login` keeps its token: $FLIP_CONFIG_DIR or ~/.config/flip, file mode 0600. */
export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.FLIP_CONFIG_DIR ?? path.join(env.XDG_CONFIG_HOME ?? path.join(os.homedir(), ".config"), "flip");
  return path.join(dir, "credentials.json");
}

export interface StoredCredentials {
  hubUrl: string;
  token: string;
  /** What the token is: "api-token" or "session". */
  kind: string;
  email?: string;
  refreshToken?: string;
  /** The API token's id, so `flip logout` can revoke it. */
  tokenId?: string;
}

export function readCredentials(env: NodeJS.ProcessEnv = process.env): StoredCredentials | undefined {
  try {
    return JSON.parse(readFileSync(credentialsPath(env), "utf8")) as StoredCredentials;
  } catch {
    return undefined;
  }
}

export function writeCredentials(c: StoredCredentials, env: NodeJS.ProcessEnv = process.env): string {
  const file = credentialsPath(env);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(c, null, 2) + "\n", { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

export function deleteCredentials(env: NodeJS.ProcessEnv = process.env): void {
  rmSync(credentialsPath(env), { force: true });
}
