import { createHash, type Hash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import * as path from "node:path";

/** Files under `dir` (repository-relative paths), leaving out dot-files and __pycache__. */
export async function listFiles(repoRoot: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(repoRoot, rel), { withFileTypes: true })) {
      if (e.name.startsWith(".") || e.name === "__pycache__") continue;
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(child);
      else if (e.isFile()) out.push(child);
    }
  };
  await walk(dir);
  return out;
}

/** Feeds each file's name, length and content to `h`, so a renamed, changed, added or removed file changes the hash. */
export async function hashFiles(h: Hash, repoRoot: string, files: string[]): Promise<void> {
  for (const f of files) {
    const content = await readFile(path.join(repoRoot, f));
    h.update(`\0${f}\0${content.length}\0`);
    h.update(content);
  }
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
