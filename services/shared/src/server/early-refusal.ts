import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { Readable } from "node:stream";
import type { ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, endStreamFlag, errorToJson, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { encodeGrpcMessage } from "./grpc-message.js";
import { cutRequest, type RequestInFlight } from "./transport-timeouts.js";

/**
 * Decides from a request's headers, before its body is read, whether the server will take the call:
 * an error refuses it (e.g. no credential for an RPC that needs one), so that an unauthenticated caller
 * cannot make the server read, decompress or decode a large body. `rpc` is "package.Service/Method".
 */
export type HeaderCheck = (rpc: string, header: Headers) => ConnectError | undefined;

/** The gRPC status of `error` as header fields: trailers, or the headers of a trailers-only answer. */
export function grpcStatusHeaders(error: ConnectError): Record<string, string> {
  return { "grpc-status": String(error.code), "grpc-message": encodeGrpcMessage(error.rawMessage) };
}

/**
 * A refused body is dropped up to at least this much before the request is cut: HTTP/2 flow control
 * lets a peer send a window's worth (16 MiB) unread anyway, and a client cut while still sending reports
 * the reset instead of the answer it was given.
 */
export const DROP_AT_LEAST_BYTES = 16 * 1024 * 1024;

/** What HTTP/1.1 and HTTP/2 compatibility responses share, and a refusal uses. */
interface ResponseHead {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  addTrailers(trailers: Record<string, string>): void;
  end(body: Uint8Array): unknown;
}

/**
 * Answers a call with `error` in the protocol the caller speaks, without decoding its body. A body still
 * arriving is taken and dropped (so that the caller's client reads the answer rather than a reset), up
 * to `dropMaxBytes`; past that the request is cut. The request deadline bounds how long it may take.
 */
export function refuseBeforeBody(req: http.IncomingMessage | http2.Http2ServerRequest, res: ResponseHead, error: ConnectError, dropMaxBytes: number): void {
  const target: RequestInFlight = "stream" in req ? { stream: req.stream } : { socket: req.socket, request: req };
  dropBody(req, Math.max(dropMaxBytes, DROP_AT_LEAST_BYTES), () => cutRequest(target));
  answer(req, res, error);
}

function answer(req: http.IncomingMessage | http2.Http2ServerRequest, res: ResponseHead, error: ConnectError): void {
  const type = req.headers["content-type"] ?? "";
  const headers: Record<string, string | number> = {};
  let status: number;
  let body: Uint8Array | undefined;
  let trailers: Record<string, string> | undefined;
  if (/^application\/grpc(\+|;|$)/.test(type)) {
    // In trailers, as Connect writes them: the compatibility layer cannot end the stream on the headers
    // (a trailers-only answer), and grpc-js reads a status only from headers that end the stream.
    status = 200;
    headers["content-type"] = type;
    trailers = grpcStatusHeaders(error);
  } else if (/^application\/grpc-web(\+|;|$)/.test(type)) {
    // gRPC-Web over HTTP/1.1 has no trailers; its clients read a status from the headers.
    status = 200;
    Object.assign(headers, { "content-type": type }, grpcStatusHeaders(error));
  } else if (/^application\/connect\+/.test(type)) {
    status = 200;
    // The end-of-stream message is JSON whatever the stream's codec.
    headers["content-type"] = type;
    const json = Buffer.from(JSON.stringify({ error: errorToJson(error, undefined) }), "utf8");
    const envelope = Buffer.alloc(5 + json.length);
    envelope[0] = endStreamFlag;
    envelope.writeUInt32BE(json.length, 1);
    envelope.set(json, 5);
    body = envelope;
  } else {
    status = codeToHttpStatus(error.code);
    headers["content-type"] = "application/json";
    body = errorToJsonBytes(error, {});
  }
  if (body) headers["content-length"] = body.length;
  res.writeHead(status, headers);
  if (trailers) res.addTrailers(trailers);
  res.end(body ?? new Uint8Array(0));
}

/** Reads and drops a body, calling `cut` once it passes `maxBytes`. */
export function dropBody(body: Readable, maxBytes: number, cut: () => void): void {
  let dropped = 0;
  const onData = (chunk: Uint8Array) => {
    dropped += chunk.length;
    if (dropped <= maxBytes) return;
    body.off("data", onData);
    cut();
  };
  body.on("data", onData);
}
