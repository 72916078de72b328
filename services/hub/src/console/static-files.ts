import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import * as path from "node:path";
import { gzipSync } from "node:zlib";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/** Compressed when asked for and worth it (text over 1 KiB). */
const COMPRESSIBLE = /^(text\/|application\/json|image\/svg)/;

export interface StaticFile {
  body: Buffer;
  gzipped: Buffer | undefined;
  contentType: string;
  etag: string;
}

/**
 * The files of a built web app, read on first request and kept in memory (a console build is a few
 * hundred KiB) with a gzipped copy; a file changed on disk (a rebuild) is read again.
 */
export class StaticFiles {
  private readonly cache = new Map<string, { mtimeMs: number; size: number; file: StaticFile }>();

  constructor(readonly root: string) {}

  /**
   * The file at a URL path, or undefined when there is none. Paths are decoded and must stay inside the
   * root: "..", NUL bytes and backslashes are refused, so no request reads outside it.
   */
  async get(urlPath: string): Promise<StaticFile | undefined> {
    let rel: string;
    try {
      rel = decodeURIComponent(urlPath);
    } catch {
      return undefined;
    }
    if (rel.includes("\0") || rel.includes("\\") || rel.split("/").some((seg) => seg === "..")) return undefined;
    const file = path.join(this.root, rel);
    if (!file.startsWith(this.root + path.sep)) return undefined;
    let st;
    try {
      st = await stat(file);
    } catch {
      return undefined;
    }
    if (!st.isFile()) return undefined;
    const cached = this.cache.get(file);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.file;
    const body = await readFile(file);
    const contentType = TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream";
    const entry: StaticFile = {
      body,
      gzipped: COMPRESSIBLE.test(contentType) && body.length > 1024 ? gzipSync(body) : undefined,
      contentType,
      etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
    };
    this.cache.set(file, { mtimeMs: st.mtimeMs, size: st.size, file: entry });
    return entry;
  }
}
