import { Code } from "@connectrpc/connect";
import { createAsyncIterable, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import { reencodeGrpcMessage } from "./grpc-message.js";

/**
 * Connect answers a request message it cannot decode (garbage protobuf) with `Internal`, "parse binary:
 * …", as if the server had failed. It is the caller's bad input: `InvalidArgument`.
 */
const UNDECODABLE_REQUEST = "parse binary: ";

const CONNECT_END_STREAM_FLAG = 0b0000_0010;
const GRPC_WEB_TRAILER_FLAG = 0b1000_0000;
const ENVELOPE_HEADER_BYTES = 5;

/**
 * The response Connect's handler produced, with its final status corrected: an undecodable request
 * answers `InvalidArgument` in every protocol, and a gRPC status message is encoded so that grpc-js
 * shows it as written (see grpc-message.ts).
 */
export async function correctedResponse(uRes: UniversalServerResponse): Promise<UniversalServerResponse> {
  const type = uRes.header?.get("content-type") ?? "";
  const body = uRes.body;
  if (body === undefined) return uRes;
  if (/^application\/grpc(\+|;|$)/.test(type)) return { ...uRes, body: thenFixTrailer(body, uRes) };
  if (/^application\/(grpc-web|connect)\+/.test(type)) return { ...uRes, body: withFixedEndOfStream(body) };
  if (uRes.status === codeToHttpStatus(Code.Internal) && type.startsWith("application/json") && !uRes.header?.has("content-encoding")) {
    return fixUnaryError(uRes, body);
  }
  return uRes;
}

/** gRPC: the status rides on trailers, which the Node writer reads once the body is done. */
async function* thenFixTrailer(body: AsyncIterable<Uint8Array>, uRes: UniversalServerResponse): AsyncGenerator<Uint8Array> {
  yield* body;
  const trailer = uRes.trailer;
  if (!trailer) return;
  const message = trailer.get("grpc-message") ?? "";
  if (trailer.get("grpc-status") === String(Code.Internal) && message.startsWith(encodeURIComponent(UNDECODABLE_REQUEST))) {
    trailer.set("grpc-status", String(Code.InvalidArgument));
  }
  reencodeGrpcMessage(trailer);
}

/** gRPC-Web and Connect streaming: the status is the last envelope of the body (Connect writes one envelope per chunk). */
async function* withFixedEndOfStream(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    const flags = chunk[0] ?? 0;
    if (chunk.length < ENVELOPE_HEADER_BYTES || !(flags & (CONNECT_END_STREAM_FLAG | GRPC_WEB_TRAILER_FLAG))) {
      yield chunk;
      continue;
    }
    const text = Buffer.from(chunk.subarray(ENVELOPE_HEADER_BYTES)).toString("utf8");
    const fixed = flags & GRPC_WEB_TRAILER_FLAG ? fixGrpcWebTrailer(text) : fixErrorJson(text, (end: { error?: ErrorJson }) => end.error);
    yield fixed === undefined ? chunk : envelope(flags, Buffer.from(fixed, "utf8"));
  }
}

/** Connect unary: the error is the whole (small, uncompressed) JSON body, its code also the HTTP status. */
async function fixUnaryError(uRes: UniversalServerResponse, body: AsyncIterable<Uint8Array>): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const c of body) chunks.push(c);
  const text = Buffer.concat(chunks).toString("utf8");
  const fixed = fixErrorJson(text, (error: ErrorJson) => error);
  if (fixed === undefined) return { ...uRes, body: createAsyncIterable(chunks) };
  const header = new Headers(uRes.header);
  header.delete("content-length");
  return { ...uRes, status: codeToHttpStatus(Code.InvalidArgument), header, body: createAsyncIterable([Buffer.from(fixed, "utf8")]) };
}

interface ErrorJson {
  code?: string;
  message?: string;
}

/** The JSON text with the error that `errorOf` finds in it made InvalidArgument, or undefined when there is nothing to fix. */
function fixErrorJson<T>(text: string, errorOf: (json: T) => ErrorJson | undefined): string | undefined {
  let json: T;
  try {
    json = JSON.parse(text) as T;
  } catch {
    return undefined;
  }
  const error = errorOf(json);
  if (error?.code !== "internal" || !error.message?.startsWith(UNDECODABLE_REQUEST)) return undefined;
  error.code = "invalid_argument";
  return JSON.stringify(json);
}

function fixGrpcWebTrailer(text: string): string | undefined {
  if (!/^grpc-status: ?13\r?$/im.test(text) || !text.toLowerCase().includes(`grpc-message: ${encodeURIComponent(UNDECODABLE_REQUEST)}`.toLowerCase())) return undefined;
  return text.replace(/^grpc-status: ?13(\r?)$/im, `grpc-status: ${Code.InvalidArgument}$1`);
}

function envelope(flags: number, data: Uint8Array): Uint8Array {
  const out = Buffer.alloc(ENVELOPE_HEADER_BYTES + data.length);
  out[0] = flags;
  out.writeUInt32BE(data.length, 1);
  out.set(data, ENVELOPE_HEADER_BYTES);
  return out;
}
