import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ConnectRequestSchema, ConnectResponseSchema, LinkService, type ConnectRequest } from "@flip/gen/flip/link/v1/link_pb.js";
import type { DirectCall } from "@flip/shared/direct/direct-call.js";
import type { DirectRoute } from "@flip/shared/direct/direct-routes.js";
import { assertValidRequest } from "@flip/shared/validation/validate-requests.js";
import { joinParts } from "@flip/shared/direct/envelope.js";
import type { LinkOutbound } from "./link-session.js";
import { openLink, runLink, type LinkServeDeps, type LinkStream } from "./serve-link.js";

/**
 * LinkService.Connect straight on the gateway's HTTP/2 stream (gRPC, binary). A hub holds one such
 * stream per trust for as long as the trust is online, so what a stream costs while idle is what a hub
 * of thousands of trusts costs: this path keeps it to the session and a small reader, where Connect's
 * handler keeps a pipeline of async generators per stream.
 */
export function directLinkRoute(deps: LinkServeDeps): DirectRoute {
  return {
    method: LinkService.method.connect,
    async handle(call) {
      const stream: LinkStream = {
        header: call.requestHeader,
        read: async () => {
          const parts = await call.read();
          return parts && decodeRequest(parts);
        },
        outbound: directOutbound(call),
        signal: call.signal,
      };
      const session = await openLink(deps, stream);
      await runLink(deps, session, stream);
    },
  };
}

function decodeRequest(parts: Uint8Array[]): ConnectRequest {
  let request: ConnectRequest;
  try {
    request = fromBinary(ConnectRequestSchema, joinParts(parts));
  } catch (e) {
    throw new ConnectError(`malformed link message: ${e instanceof Error ? e.message : String(e)}`, Code.InvalidArgument);
  }
  // This path skips serve()'s interceptors; without their input rules a NUL would reach PostgreSQL.
  assertValidRequest(ConnectRequestSchema, request);
  return request;
}

/** The hub's messages written straight to the stream; an end with an error is the call's status. */
function directOutbound(call: DirectCall): LinkOutbound {
  return {
    push(message) {
      if (call.closed) return false;
      call.send([toBinary(ConnectResponseSchema, message)]);
      return true;
    },
    end: () => call.end(),
    fail: (error) => call.end(error),
  };
}
