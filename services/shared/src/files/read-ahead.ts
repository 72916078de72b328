import type { FileHandle } from "node:fs/promises";
import type { BufferPool } from "./buffer-pool.js";

/**
 * Bytes [from, to) of an open file, one chunk at a time, with the next read in flight while the caller
 * handles the current one (so disk and network overlap). Each chunk is a buffer of its own, since callers
 * hand them to a socket that may still hold the previous one: from `buffers` (of `chunkBytes` each) when
 * given, and the caller gives each back once nothing holds it, else freshly allocated. A file shorter
 * than `to` fails with `ended(at)`'s message.
 */
export async function* readAhead(
  fh: FileHandle,
  from: number,
  to: number,
  chunkBytes: number,
  opts: { buffers?: BufferPool; ended?: (at: number) => string } = {},
): AsyncGenerator<{ at: number; data: Uint8Array }> {
  const readAt = async (at: number) => {
    const want = Math.min(chunkBytes, to - at);
    const buf = opts.buffers?.take() ?? Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, at);
    if (bytesRead === 0) throw new Error(opts.ended?.(at) ?? `the file ended at ${at}, expected ${to} bytes`);
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
