import type { Hash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { BufferPool } from "@flip/shared/files/buffer-pool.js";

/** One read and upload chunk: 1 MiB, so a cut upload re-sends little, well under the hub's 16 MiB message cap. */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * Bytes [from, to) of an open file, one chunk at a time, with the next read in flight while the caller
 * handles the current one (so disk and network overlap). Each chunk is a buffer of its own, since callers
 * hand them to a socket that may still hold the previous one: from `buffers` (of `chunkBytes` each) when
 * given, and the caller gives each back once nothing holds it, else freshly allocated.
 */
export async function* fileChunks(
  fh: FileHandle,
  from: number,
  to: number,
  chunkBytes = CHUNK_BYTES,
  buffers?: BufferPool,
): AsyncGenerator<{ at: number; data: Uint8Array }> {
  const readAt = async (at: number) => {
    const want = Math.min(chunkBytes, to - at);
    const buf = buffers?.take() ?? Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, at);
    // The caller's size check (the file's size is taken before each attempt) turns this into a clear refusal.
    if (bytesRead === 0) throw new Error(`the file shrank while it was read (ended at ${at} of ${to} bytes)`);
    return { at, data: buf.subarray(0, bytesRead) };
  };
  // Settled by the loop; a failure must not surface as an unhandled rejection meanwhile.
  const ahead = (at: number) => {
    const p = readAt(at);
    p.catch(() => undefined);
    return p;
  };
  let next = from < to ? ahead(from) : undefined;
  try {
    while (next) {
      const chunk = await next;
      const end = chunk.at + chunk.data.length;
      next = end < to ? ahead(end) : undefined;
      yield chunk;
    }
  } finally {
    // A read still in flight (the caller stopped early) must finish before the caller closes the handle.
    await next?.catch(() => undefined);
  }
}

/** Feeds bytes [from, to) of an open file into `hash`. */
export async function hashRange(fh: FileHandle, hash: Hash, from: number, to: number): Promise<void> {
  const buffers = new BufferPool(CHUNK_BYTES, 2);
  for await (const { data } of fileChunks(fh, from, to, CHUNK_BYTES, buffers)) {
    hash.update(data);
    buffers.give(data);
  }
}
