import { spawnSync } from "node:child_process";
import { EmbeddedPostgresError } from "./embedded-postgres-error.js";

/** The OS user the embedded server's processes run as. */
export interface ServerUser {
  uid: number;
  gid: number;
}

const NAME = "postgres";

/**
 * PostgreSQL refuses to run as root, so under root the embedded server runs as the `postgres` OS user
 * (created when missing, as a system user without a home). undefined when FLIP itself is not root: the
 * server then runs as the same user.
 */
export function serverUser(): ServerUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let found = lookUp();
  if (!found) {
    spawnSync("useradd", ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", NAME], { stdio: "ignore" });
    found = lookUp();
  }
  if (!found) {
    throw new EmbeddedPostgresError(
      `PostgreSQL cannot run as root and there is no "${NAME}" OS user to run it as: create one (useradd --system ${NAME}) or run FLIP as a normal user`,
    );
  }
  return found;
}

function lookUp(): ServerUser | undefined {
  const id = (flag: string) => spawnSync("id", [flag, NAME], { encoding: "utf8" });
  const uid = id("-u");
  const gid = id("-g");
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Whether `user` may search (`x`) or write (`w`) `target`, asked of the kernel as that user, so every
 * parent directory's permissions (and ACLs) count.
 */
export function userCan(user: ServerUser, access: "x" | "w", target: string): boolean {
  return spawnSync("test", [`-${access}`, target], { uid: user.uid, gid: user.gid, stdio: "ignore" }).status === 0;
}
