import type * as http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Logger } from "../logging/logger.js";
import { contextFromHeaders, tracer } from "../telemetry/trace-context.js";
import { DirectCall } from "./direct-call.js";

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
  maxMessageBytes: number;
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
  const call = new DirectCall(stream, headers, { maxMessageBytes: opts.maxMessageBytes, bufferBytes: CALL_BUFFER_BYTES, shutdownSignal: opts.shutdownSignal });
  const { method } = route;
  const rpc = `${method.parent.typeName}/${method.name}`;
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
