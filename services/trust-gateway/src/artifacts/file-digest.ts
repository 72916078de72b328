import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";

/** One read size for files and chunks: 1 MiB, well under the hub's 16 MiB message cap. */
export const CHUNK_BYTES = 1024 * 1024;

/** Feeds bytes [0, end) of a file (all of it when `end` is undefined) into `hash`, one chunk at a time; returns the bytes read. */
export async function hashFile(file: string, hash: Hash, end?: number): Promise<number> {
  if (end === 0) return 0;
  let n = 0;
  const stream = createReadStream(file, { highWaterMark: CHUNK_BYTES, ...(end === undefined ? {} : { end: end - 1 }) });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    n += chunk.length;
  }
  return n;
}

/** SHA-256 (lower-case hex) and size of a file, read as a stream. */
export async function digestFile(file: string): Promise<{ sha256: string; sizeBytes: number }> {
  const hash = createHash("sha256");
  const sizeBytes = await hashFile(file, hash);
  return { sha256: hash.digest("hex"), sizeBytes };
}
