import * as fs from "node:fs";

/** A lock file taken, or the live process that holds it. */
export type PidLock = { acquired: true; release(): void } | { acquired: false; holder: number };

export interface PidLockOptions {
  /** The pid the lock is taken for; default this process. */
  pid?: number;
  /**
   * Whether a lock naming `pid` itself is stale. By default it is held (by another caller in this
   * process); a process that takes its lock once at start (e.g. as pid 1 in a container, restarted)
   * finds its own pid only in a lock left by an earlier life.
   */
  ownPidIsStale?: boolean;
}

/**
 * Takes `lockPath` if no live process holds it: the file holds the holder's pid and is created with its
 * content at once, so no one reads it half-written. A lock left by a process that is gone (a crash,
 * SIGKILL) is taken over. `release` removes the file only while it is still ours.
 */
export function tryPidLock(lockPath: string, opts: PidLockOptions = {}): PidLock {
  const pid = opts.pid ?? process.pid;
  // Two tries: the second after removing a stale lock (a racing process may win it; then it holds it).
  for (let attempt = 0; attempt < 2; attempt++) {
    if (createWithPid(lockPath, pid)) {
      // Never remove a lock a later process took after ours was judged stale.
      return { acquired: true, release: () => readHolder(lockPath) === pid && fs.rmSync(lockPath, { force: true }) };
    }
    const holder = readHolder(lockPath);
    const stale = holder === undefined || (holder === pid ? opts.ownPidIsStale === true : !isProcessAlive(holder));
    if (!stale) return { acquired: false, holder };
    fs.rmSync(lockPath, { force: true });
  }
  return { acquired: false, holder: readHolder(lockPath) ?? 0 };
}

/** Whether a process with this pid exists (EPERM: it does, but belongs to another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A hard link fails if the lock exists, and the draft it links already holds the pid. */
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

function readHolder(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockPath, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
