import { lstatSync, readdirSync, realpathSync, rmSync } from "node:fs";
import * as path from "node:path";

/**
 * Removes everything the demo keeps in `demoDir` but the entries named in `keep` (its lock file): the
 * databases, PACSs, accounts and keys. As root, PostgreSQL's data may live where the `postgres` OS user can
 * reach it, linked from the demo directory: what a link points to goes too, so a reset leaves no database
 * behind that a fresh start would find without its password.
 */
export function removeDemoState(demoDir: string, keep: string[] = []): void {
  let entries;
  try {
    entries = readdirSync(demoDir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    if (keep.includes(entry.name)) continue;
    const target = path.join(demoDir, entry.name);
    for (const linked of linkedData(target)) rmSync(linked, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
  }
}

/** Where the symbolic links under `p` (or `p` itself, when it is one) point; dangling links point nowhere. */
function linkedData(p: string): string[] {
  const stat = lstatSync(p);
  const links = stat.isSymbolicLink()
    ? [p]
    : stat.isDirectory()
      ? readdirSync(p, { recursive: true, withFileTypes: true }).filter((e) => e.isSymbolicLink()).map((e) => path.join(e.parentPath, e.name))
      : [];
  return links.flatMap((link) => {
    try {
      return [realpathSync(link)];
    } catch {
      return [];
    }
  });
}
