import { readdirSync, statSync } from "node:fs";
import * as path from "node:path";
import { tryPidLock } from "@flip/shared/process/pid-lock.js";

const root = path.resolve(import.meta.dirname, "../../..");
export const CONSOLE_DIR = path.join(root, "console");
export const CONSOLE_DIST = path.join(CONSOLE_DIR, "dist");

/** What the build reads: the console's sources, its config, and the generated clients it imports. */
const SOURCES = [path.join(CONSOLE_DIR, "src"), path.join(CONSOLE_DIR, "index.html"), path.join(CONSOLE_DIR, "vite.config.ts"), path.join(root, "gen", "src", "flip")];

function newestMtime(p: string): number {
  let st;
  try {
    st = statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, name)));
  return newest;
}

/** True when console/dist is missing or older than a file it is built from. */
export function consoleIsStale(): boolean {
  let built: number;
  try {
    built = statSync(path.join(CONSOLE_DIST, "index.html")).mtimeMs;
  } catch {
    return true;
  }
  return SOURCES.some((s) => newestMtime(s) > built);
}

/**
 * Builds the web console (Vite) into console/dist when it is missing or stale; about a second. One build
 * at a time across processes (a pid lock beside it): a second caller waits for it, then finds it fresh.
 * Returns whether it built.
 */
export async function ensureConsoleBuilt(progress: (line: string) => void = () => undefined): Promise<boolean> {
  if (!consoleIsStale()) return false;
  const lockPath = path.join(CONSOLE_DIR, ".build.lock");
  for (;;) {
    const lock = tryPidLock(lockPath);
    if (!lock.acquired) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    try {
      if (!consoleIsStale()) return false;
      progress("building the web console (Vite)");
      const { build } = await import("vite");
      await build({ root: CONSOLE_DIR, configFile: path.join(CONSOLE_DIR, "vite.config.ts"), logLevel: "warn" });
      return true;
    } finally {
      lock.release();
    }
  }
}
