import * as fs from "node:fs";
import * as path from "node:path";

/** Another live gateway process holds the state directory: two gateways of one trust would run every task twice. */
export class StateDirInUseError extends Error {
  override readonly name = "StateDirInUseError";
  constructor(
    readonly stateDir: string,
    readonly pid: number,
  ) {
    super(`another trust gateway (pid ${pid}) is using ${stateDir}; stop it first, or give this one its own FLIP_GATEWAY_STATE_DIR`);
  }
}

export interface StateDirLock {
  readonly path: string;
  /** Removes the lock file (also done when the process exits). */
  release(): void;
}

const LOCK_FILE = "gateway.lock";

/**
 * Takes the gateway's state directory for this process: `<dir>/gateway.lock`, created exclusively,
 * holds our pid. A lock left by a process that is gone (a crash, SIGKILL) is replaced; one
 * of a live process refuses with StateDirInUseError. The file is removed when this process exits.
 */
export function lockStateDir(stateDir: string, pid = process.pid): StateDirLock {
  fs.mkdirSync(stateDir, { recursive: true });
  const lockPath = path.join(stateDir, LOCK_FILE);
  // Two tries: the second after removing a stale lock (a racing starter may win it; then we refuse).
  for (let attempt = 0; attempt < 2; attempt++) {
    if (createWithPid(lockPath, pid)) return held(lockPath, pid);
    const holder = readHolder(lockPath);
    if (holder !== undefined && holder !== pid && isAlive(holder)) throw new StateDirInUseError(stateDir, holder);
    fs.rmSync(lockPath, { force: true });
  }
  throw new StateDirInUseError(stateDir, readHolder(lockPath) ?? 0);
}

/** Creates the lock file with its content at once (a hard link fails if it exists), so no one reads it half-written. */
function createWithPid(lockPath: string, pid: number): boolean {
  const draft = `${lockPath}.${pid}.tmp`;
  fs.writeFileSync(draft, `${pid}\n`);
  try {
    fs.linkSync(draft, lockPath);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    fs.rmSync(draft, { force: true });
  }
}

function held(lockPath: string, pid: number): StateDirLock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off("exit", release);
    // Only our own lock: never remove one a later process took after ours was judged stale.
    if (readHolder(lockPath) === pid) fs.rmSync(lockPath, { force: true });
  };
  process.on("exit", release);
  return { path: lockPath, release };
}

function readHolder(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockPath, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
