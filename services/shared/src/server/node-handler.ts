import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter, createServiceImplSpec, type ConnectRouterOptions, type ConnectRouter, type ContextValues, type ServiceImpl } from "@connectrpc/connect";
import { uResponseNotFound } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { Logger } from "../logging/logger.js";
import { headersOf } from "../direct/http2-wire.js";
import { refuseBeforeBody, type HeaderCheck } from "./early-refusal.js";
import { correctedResponse } from "./response-status.js";
import { cutIfRequestLate, requestDeadlineMs, type RequestInFlight, type RequestTimeouts } from "./transport-timeouts.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface NodeHandlerOptions extends ConnectRouterOptions {
  routes(router: ConnectRouter): void;
  contextValues?: (req: NodeRequest) => ContextValues;
  log: Logger;
  /** Runs on the headers of every routed call before its body is read; an error refuses the call. */
  checkHeaders?: HeaderCheck;
  /**
   * Per-RPC exceptions ("package.Service/Method" → bytes) to `readMaxBytes`, which every other RPC
   * gets: a large cap only where a large message is expected (uploads). Also bounds decompression.
   */
  readMaxBytesFor?: ReadonlyMap<string, number>;
  /** Deadlines for a request to arrive in full; without them requests are not timed. */
  requestTimeouts?: RequestTimeouts;
  /** Sees every request before it is routed; see WebRequestHook. */
  web?: WebRequestHook;
}

/**
 * Plain HTTP beside the RPCs (a web app's files, CORS): called with every request before routing, and
 * told whether its path is an RPC. It answers the request and returns true, or returns false to let the
 * RPC (or a 404) answer; it may set response headers either way.
 */
export type WebRequestHook = (req: NodeRequest, res: NodeResponse, isRpc: boolean) => boolean;

/**
 * A Node request handler for a Connect router: what `connectNodeAdapter` does, except that a call that
 * fails after routing is logged through pino rather than printed with `console.error`. A caller that
 * went away while its answer was being written (a gateway cut mid-download, a client that gave up) is
 * routine and logged at debug; anything else is an error with the RPC named.
 */
export function connectNodeHandler(options: NodeHandlerOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  options.routes(withReadCaps(router, options.readMaxBytesFor ?? new Map()));
  const paths = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return (req, res) => {
    const handler = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (options.web?.(req, res, handler !== undefined)) return;
    if (!handler) {
      res.statusCode = uResponseNotFound.status;
      res.end();
      return;
    }
    const rpc = `${handler.service.typeName}/${handler.method.name}`;
    const deadline = options.requestTimeouts && requestDeadlineMs(handler.method.methodKind, options.readMaxBytesFor?.has(rpc) ?? false, options.requestTimeouts);
    if (deadline !== undefined) {
      const stop = cutIfRequestLate(inFlight(req), deadline, () => options.log.info({ rpc, deadlineMs: deadline }, "request did not arrive in time; cut"));
      res.once("close", stop);
    }
    const refusal = options.checkHeaders?.(rpc, headersOf(req.headers));
    if (refusal) {
      options.log.debug({ rpc, code: Code[refusal.code] }, "call refused on its headers, before its body was read");
      refuseBeforeBody(req, res, refusal, options.readMaxBytesFor?.get(rpc) ?? options.readMaxBytes ?? DEFAULT_READ_MAX_BYTES);
      return;
    }
    const uReq = universalRequestFromNodeRequest(req, res, undefined, options.contextValues?.(req));
    handler(uReq)
      .then(async (uRes) => universalResponseToNodeResponse(await correctedResponse(uRes), res))
      .catch((reason: unknown) => {
        const err = ConnectError.from(reason);
        if (err.code === Code.Aborted) return;
        if (callerWentAway(err, res)) options.log.debug({ rpc, err: err.rawMessage }, "the caller went away before the answer was written");
        else options.log.error({ rpc, err }, "a call failed after it was routed");
      });
  };
}

/** Write errors that mean the connection or stream is gone, not that the server misbehaved. */
const GONE = new Set(["ECANCELED", "EPIPE", "ECONNRESET", "ERR_STREAM_DESTROYED", "ERR_STREAM_WRITE_AFTER_END", "ERR_HTTP2_INVALID_STREAM", "ERR_HTTP2_STREAM_ERROR"]);

function callerWentAway(err: ConnectError, res: NodeResponse): boolean {
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code;
  return res.destroyed || (code !== undefined && GONE.has(code));
}

/**
 * The router the routes register on, giving each RPC in `caps` its own read cap. Connect takes options
 * per service or per RPC, so a service with one capped RPC is registered RPC by RPC.
 */
function withReadCaps(router: ConnectRouter, caps: ReadonlyMap<string, number>): ConnectRouter {
  const capOf = (m: DescMethod) => caps.get(`${m.parent.typeName}/${m.name}`);
  const wrapped: ConnectRouter = {
    handlers: router.handlers,
    service(service: DescService, impl: Partial<ServiceImpl<DescService>>, opts) {
      if (!service.methods.some((m) => capOf(m) !== undefined)) {
        router.service(service, impl, opts);
        return wrapped;
      }
      const spec = createServiceImplSpec(service, impl);
      for (const m of service.methods) {
        const cap = capOf(m);
        // `never`: the spec's impl is the one for `m`, which TypeScript cannot relate to a method of a generic service.
        router.rpc(m, spec.methods[m.localName]!.impl as never, cap === undefined ? opts : { ...opts, readMaxBytes: cap });
      }
      return wrapped;
    },
    rpc(method, impl, opts) {
      const cap = capOf(method);
      router.rpc(method, impl, cap === undefined ? opts : { ...opts, readMaxBytes: cap });
      return wrapped;
    },
  };
  return wrapped;
}

/** Connect's own default read cap. */
const DEFAULT_READ_MAX_BYTES = 0xffffffff;

function inFlight(req: NodeRequest): RequestInFlight {
  return "stream" in req ? { stream: req.stream } : { socket: req.socket, request: req };
}
