import * as http from "node:http";
import * as http2 from "node:http2";

/** What came back for a raw request: the status, headers, body, and (HTTP/2) trailers. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  trailers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** HTTP/2: the code the stream was reset with (0 when it ended normally). */
  rstCode?: number;
}

/**
 * Sends `body` as one request over a fresh h2c connection, exactly as given (no protocol library in the
 * way: for bytes a client library would refuse to send), and waits for the whole answer.
 */
export async function rawHttp2(baseUrl: string, path: string, headers: http2.OutgoingHttpHeaders, body: Uint8Array): Promise<RawResponse> {
  const session = http2.connect(baseUrl);
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": path, ...headers });
      const chunks: Buffer[] = [];
      let status = 0;
      let responseHeaders: RawResponse["headers"] = {};
      let trailers: RawResponse["trailers"] = {};
      req.on("response", (h) => {
        status = Number(h[":status"]);
        responseHeaders = h;
      });
      req.on("trailers", (h) => (trailers = h));
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("close", () => resolve({ status, headers: responseHeaders, trailers, body: Buffer.concat(chunks), rstCode: req.rstCode }));
      req.on("error", reject);
      req.end(body);
    });
  } finally {
    session.close();
  }
}

/** The same over HTTP/1.1. */
export async function rawHttp1(baseUrl: string, path: string, headers: http.OutgoingHttpHeaders, body: Uint8Array): Promise<RawResponse> {
  return await new Promise<RawResponse>((resolve, reject) => {
    const req = http.request(new URL(path, baseUrl), { method: "POST", headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A gRPC length-prefixed message (flags 0: not compressed, unless `flags` says so). */
export function grpcFrame(message: Uint8Array, flags = 0): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = flags;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}
