/**
 * A streaming reader of multipart/related bodies (RFC 2046), as WADO-RS answers a whole study: one
 * part is held in memory at a time, never the study.
 */

const CRLF = Buffer.from("\r\n");
const HEADERS_END = Buffer.from("\r\n\r\n");
const MAX_HEADER_BYTES = 64 * 1024;

/** A multipart body that does not follow RFC 2046 (or ends early). */
export class MultipartError extends Error {
  override readonly name = "MultipartError";
  constructor(
    message: string,
    /** The body stopped early (a connection cut) rather than being malformed. */
    readonly truncated = false,
  ) {
    super(message);
  }
}

/** The boundary parameter of a multipart Content-Type, quoted or not; undefined when absent. */
export function boundaryOf(contentType: string): string | undefined {
  const m = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/**
 * Yields the body of each part (headers dropped) as it completes. The boundary may be split across
 * chunks in any way. Reads the body to its end, so a keep-alive connection can be reused.
 */
export async function* multipartParts(body: AsyncIterable<Uint8Array>, boundary: string): AsyncGenerator<Uint8Array> {
  // Every delimiter, the first included once the body is seen as starting with CRLF, is CRLF--boundary.
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const keep = delimiter.length - 1;
  let state: "preamble" | "afterDelimiter" | "headers" | "body" | "epilogue" = "preamble";
  let pending: Buffer = Buffer.from(CRLF);
  let part: Buffer[] = [];
  let partBytes = 0;

  for await (const chunk of body) {
    if (state === "epilogue") continue;
    // A copy: the source may reuse its chunk while this part still holds pieces of it.
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (state === "preamble" || state === "body") {
        const at = pending.indexOf(delimiter);
        if (at < 0) {
          // Whatever cannot be the start of a delimiter is settled.
          const settled = pending.length - keep;
          if (settled > 0) {
            if (state === "body") {
              part.push(pending.subarray(0, settled));
              partBytes += settled;
            }
            pending = pending.subarray(settled);
          }
          break;
        }
        if (state === "body") {
          part.push(pending.subarray(0, at));
          yield Buffer.concat(part, partBytes + at);
          part = [];
          partBytes = 0;
        }
        pending = pending.subarray(at + delimiter.length);
        state = "afterDelimiter";
      } else if (state === "afterDelimiter") {
        if (pending.length < 2) break;
        if (pending[0] === 0x2d && pending[1] === 0x2d) {
          state = "epilogue";
          break;
        }
        state = "headers";
      } else if (state === "headers") {
        // From the end of the delimiter line: a part without headers is CRLF CRLF right there.
        const lineEnd = pending.indexOf(CRLF);
        const end = lineEnd < 0 ? -1 : pending.indexOf(HEADERS_END, lineEnd);
        if (end < 0) {
          if (pending.length > MAX_HEADER_BYTES) throw new MultipartError(`part headers longer than ${MAX_HEADER_BYTES} bytes`);
          break;
        }
        if (/\S/.test(pending.subarray(0, lineEnd).toString("latin1"))) {
          throw new MultipartError("text after a boundary delimiter on its line");
        }
        pending = pending.subarray(end + HEADERS_END.length);
        state = "body";
      } else {
        break;
      }
    }
  }
  if (state !== "epilogue") {
    if (state === "preamble") throw new MultipartError(`no part with boundary ${JSON.stringify(boundary)}`);
    throw new MultipartError("body ended before the closing boundary", true);
  }
}
