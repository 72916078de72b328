import type * as http2 from "node:http2";
import type { Writable } from "node:stream";
import { envelopeHeader, partsLength } from "./envelope.js";

/**
 * HTTP/2 flow-control window per stream and per connection for both ends of a direct call. With
 * HTTP/2's default 64 KiB a bulk transfer waits for a WINDOW_UPDATE every 64 KiB; 16 MiB keeps the pipe
 * full (what a stream may buffer is still bounded: a paused stream stops being read).
 */
export const WINDOW_BYTES = 16 * 1024 * 1024;

/** The largest HTTP/2 frame either end accepts: a DATA frame per 16 KiB (the default) costs a read event each. */
export const MAX_FRAME_BYTES = 256 * 1024;

/**
 * Writes one message made of `parts` (e.g. an encoded head and a payload) without joining them; a
 * corked write, so they go out together. `written` runs once the stream no longer holds the parts.
 */
export function writeMessage(stream: Writable, parts: Uint8Array[], written?: () => void): void {
  stream.cork();
  stream.write(envelopeHeader(partsLength(parts)));
  parts.forEach((p, i) => stream.write(p, i === parts.length - 1 && written ? (e) => !e && written() : undefined));
  stream.uncork();
}

/** HTTP/2 headers as a fetch Headers object, pseudo-headers left out. */
export function headersOf(headers: http2.IncomingHttpHeaders): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith(":") || v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) h.append(k, x);
    else h.set(k, v);
  }
  return h;
}
