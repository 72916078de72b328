import * as fs from "node:fs";
import * as path from "node:path";
import { tryPidLock } from "@flip/shared/process/pid-lock.js";

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
 * Takes the gateway's state directory for this process: `<dir>/gateway.lock` holds our pid. A lock left
 * by a process that is gone (a crash, SIGKILL) is replaced; one of a live process refuses with
 * StateDirInUseError. The file is removed when this process exits.
 */
export function lockStateDir(stateDir: string, pid = process.pid): StateDirLock {
  fs.mkdirSync(stateDir, { recursive: true });
  const lockPath = path.join(stateDir, LOCK_FILE);
  // A lock naming our own pid is from an earlier life of this pid (e.g. pid 1 in a restarted container).
  const lock = tryPidLock(lockPath, { pid, ownPidIsStale: true });
  if (!lock.acquired) throw new StateDirInUseError(stateDir, lock.holder);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off("exit", release);
    lock.release();
  };
  process.on("exit", release);
  return { path: lockPath, release };
}
