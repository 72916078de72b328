import type * as http from "node:http";
import type * as http2 from "node:http2";
import { Code, ConnectError, createConnectRouter, type ConnectRouterOptions, type ConnectRouter, type ContextValues } from "@connectrpc/connect";
import { uResponseNotFound } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { Logger } from "../logging/logger.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface NodeHandlerOptions extends ConnectRouterOptions {
  routes(router: ConnectRouter): void;
  contextValues?: (req: NodeRequest) => ContextValues;
  log: Logger;
}

/**
 * A Node request handler for a Connect router: what `connectNodeAdapter` does, except that a call that
 * fails after routing is logged through pino rather than printed with `console.error`. A caller that
 * went away while its answer was being written (a gateway cut mid-download, a client that gave up) is
 * routine and logged at debug; anything else is an error with the RPC named.
 */
export function connectNodeHandler(options: NodeHandlerOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  options.routes(router);
  const paths = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return (req, res) => {
    const handler = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (!handler) {
      res.statusCode = uResponseNotFound.status;
      res.end();
      return;
    }
    const uReq = universalRequestFromNodeRequest(req, res, undefined, options.contextValues?.(req));
    handler(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        const err = ConnectError.from(reason);
        if (err.code === Code.Aborted) return;
        const rpc = `${handler.service.typeName}/${handler.method.name}`;
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
