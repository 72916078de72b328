import type { ConnectRouter } from "@connectrpc/connect";
import { LinkService, type ConnectResponse } from "@flip/gen/flip/link/v1/link_pb.js";
import { AsyncQueue } from "@flip/shared/streams/async-queue.js";
import { openLink, runLink, type LinkServeDeps, type LinkStream } from "./serve-link.js";

/**
 * LinkService.Connect through Connect's handler: the path for the Connect protocol (and gRPC with
 * compression). gRPC gateways normally take the direct path (`direct-link.ts`); both serve the same link.
 */
export function registerLinkHandlers(router: ConnectRouter, deps: LinkServeDeps): void {
  router.service(LinkService, {
    async *connect(requests, ctx) {
      const reader = requests[Symbol.asyncIterator]();
      const outbound = new AsyncQueue<ConnectResponse>();
      const stream: LinkStream = {
        header: ctx.requestHeader,
        read: async () => {
          const r = await reader.next();
          return r.done ? undefined : r.value;
        },
        outbound,
        signal: ctx.signal,
      };
      const session = await openLink(deps, stream);
      const running = runLink(deps, session, stream);
      try {
        yield* outbound;
      } finally {
        session.close();
        await running;
      }
    },
  });
}
