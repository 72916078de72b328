import type * as http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Logger } from "../logging/logger.js";
import { contextFromHeaders, tracer } from "../telemetry/trace-context.js";
import { DROP_AT_LEAST_BYTES, dropBody, grpcStatusHeaders, type HeaderCheck } from "../server/early-refusal.js";
import { cutIfRequestLate, cutRequest, requestDeadlineMs, type RequestTimeouts } from "../server/transport-timeouts.js";
import { DirectCall } from "./direct-call.js";
import { headersOf } from "./http2-wire.js";

/** An RPC served straight on HTTP/2 streams for gRPC binary callers; every other protocol goes to Connect's handler for it. */
export interface DirectRoute {
  method: DescMethod;
  /** Serves one call; resolving ends it with OK (unless it ended itself), throwing ends it with the error's status. */
  handle(call: DirectCall): Promise<void>;
}

export interface DirectRouterOptions {
  routes: DirectRoute[];
  log: Logger;
  shutdownSignal: AbortSignal;
  /** Largest request message of a route not in `maxMessageBytesFor`. */
  maxMessageBytes: number;
  /** Per-RPC ("package.Service/Method") exceptions to `maxMessageBytes`. */
  maxMessageBytesFor?: ReadonlyMap<string, number>;
  /** Runs on a call's headers before any of its body is read; an error refuses the call. */
  checkHeaders?: HeaderCheck;
  /** Deadlines for a request to arrive in full; without them requests are not timed. */
  requestTimeouts?: RequestTimeouts;
}

/** Request bytes a direct call buffers before pausing its stream. */
const CALL_BUFFER_BYTES = 8 * 1024 * 1024;

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

/**
 * Puts direct routes in front of an HTTP/2 server's compatibility layer (which turns each stream into a
 * request and response for Connect): a gRPC binary call to a direct route is served on its stream;
 * everything else reaches the original listeners unchanged.
 */
export function routeDirectCalls(server: http2.Http2Server | http2.Http2SecureServer, opts: DirectRouterOptions): void {
  if (opts.routes.length === 0) return;
  const byPath = new Map(opts.routes.map((r) => [`/${r.method.parent.typeName}/${r.method.name}`, r]));
  const compat = server.listeners("stream") as StreamListener[];
  server.removeAllListeners("stream");
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    const route = byPath.get(headers[":path"] ?? "");
    if (route && isDirectCall(headers)) serveDirect(route, stream, headers, opts);
    else for (const l of compat) l.call(server, stream, headers, flags, rawHeaders);
  });
}

/** gRPC with binary protobuf and no compression: what the direct path speaks. */
function isDirectCall(headers: http2.IncomingHttpHeaders): boolean {
  const type = headers["content-type"];
  const encoding = headers["grpc-encoding"];
  return headers[":method"] === "POST" && (type === "application/grpc" || type === "application/grpc+proto") && (encoding === undefined || encoding === "identity");
}

function serveDirect(route: DirectRoute, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, opts: DirectRouterOptions): void {
  const { method } = route;
  const rpc = `${method.parent.typeName}/${method.name}`;
  const maxMessageBytes = opts.maxMessageBytesFor?.get(rpc) ?? opts.maxMessageBytes;
  const deadline = opts.requestTimeouts && requestDeadlineMs(method.methodKind, opts.maxMessageBytesFor?.has(rpc) ?? false, opts.requestTimeouts);
  if (deadline !== undefined) {
    const stop = cutIfRequestLate({ stream }, deadline, () => opts.log.info({ rpc, deadlineMs: deadline }, "request did not arrive in time; cut"));
    stream.once("close", stop);
  }
  const refusal = opts.checkHeaders?.(rpc, headersOf(headers));
  if (refusal) {
    opts.log.debug({ rpc, code: Code[refusal.code] }, "call refused on its headers, before its body was read");
    // Trailers-only; a body still arriving is dropped undecoded, as in refuseBeforeBody.
    dropBody(stream, Math.max(maxMessageBytes, DROP_AT_LEAST_BYTES), () => cutRequest({ stream }));
    stream.respond({ ":status": 200, "content-type": String(headers["content-type"]), ...grpcStatusHeaders(refusal) }, { endStream: true });
    return;
  }
  const call = new DirectCall(stream, headers, { maxMessageBytes, bufferBytes: CALL_BUFFER_BYTES, shutdownSignal: opts.shutdownSignal });
  const parent = contextFromHeaders(call.requestHeader);
  const span = tracer.startSpan(rpc, { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": method.parent.typeName, "rpc.method": method.name } }, parent);
  void context
    .with(trace.setSpan(parent, span), () => route.handle(call))
    .then(
      () => call.end(),
      (e: unknown) => {
        const err = ConnectError.from(e);
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.setAttribute("rpc.grpc.status_code", err.code);
        if (e instanceof ConnectError) {
          opts.log.debug({ rpc, code: Code[err.code], err: err.rawMessage }, "direct call ended with an error");
          call.end(err);
        } else {
          // A plain Error is a bug here, and its message is not for the caller.
          if (!call.closed) opts.log.error({ rpc, err: e }, "a call failed after it was routed");
          call.end(new ConnectError("internal error", Code.Internal));
        }
      },
    )
    .finally(() => span.end());
}
