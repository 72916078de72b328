import type { Hash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { BufferPool } from "@flip/shared/files/buffer-pool.js";
import { readAhead } from "@flip/shared/files/read-ahead.js";

/** One read and upload chunk: 1 MiB, so a cut upload re-sends little, well under the hub's 16 MiB message cap. */
export const CHUNK_BYTES = 1024 * 1024;

/** Bytes [from, to) of the file being uploaded, read ahead (see `readAhead`). */
export function fileChunks(fh: FileHandle, from: number, to: number, chunkBytes = CHUNK_BYTES, buffers?: BufferPool): AsyncGenerator<{ at: number; data: Uint8Array }> {
  // The caller's size check (the file's size is taken before each attempt) turns a short read into a clear refusal.
  return readAhead(fh, from, to, chunkBytes, { buffers, ended: (at) => `the file shrank while it was read (ended at ${at} of ${to} bytes)` });
}

/** Feeds bytes [from, to) of an open file into `hash`. */
export async function hashRange(fh: FileHandle, hash: Hash, from: number, to: number): Promise<void> {
  const buffers = new BufferPool(CHUNK_BYTES, 2);
  for await (const { data } of fileChunks(fh, from, to, CHUNK_BYTES, buffers)) {
    hash.update(data);
    buffers.give(data);
  }
}
