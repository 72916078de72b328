import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { context, propagation } from "@opentelemetry/api";
import { LinkService, type ConnectRequest } from "@flip/gen/flip/link/v1/link_pb.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { Database } from "../db/database.js";
import { authenticateLink, linkRefused } from "./authenticate-link.js";
import { LinkNoLongerAllowedError } from "./stream-ownership.js";
import { readHello } from "./hello.js";
import type { LinkRegistry } from "./link-registry.js";
import type { LinkSession } from "./link-session.js";

export interface LinkHandlerDeps {
  db: Database;
  log: Logger;
  registry: LinkRegistry;
}

const headerGetter = { get: (h: Headers, k: string) => h.get(k) ?? undefined, keys: (h: Headers) => [...h.keys()] };

/** The W3C context the gateway opened the stream with, for messages that belong to no task. */
function streamTraceCarrier(ctx: HandlerContext): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(propagation.extract(context.active(), ctx.requestHeader, headerGetter), carrier);
  return carrier;
}

/** Reads the gateway's messages in order until the stream ends; returns why it ended. */
async function consume(session: LinkSession, requests: AsyncIterator<ConnectRequest>, log: Logger): Promise<string> {
  for (;;) {
    let next: IteratorResult<ConnectRequest>;
    try {
      next = await requests.next();
    } catch (e) {
      session.close();
      return `the stream broke: ${ConnectError.from(e).rawMessage}`;
    }
    if (next.done) {
      session.close();
      return "the gateway ended the stream";
    }
    try {
      await session.handle(next.value);
    } catch (e) {
      const err = ConnectError.from(e);
      if (err.code === Code.InvalidArgument) {
        session.close(err);
        return `protocol error: ${err.rawMessage}`;
      }
      // The gateway keeps what it sent until acknowledged, so after a reconnect it sends it again.
      log.error({ err: e, trustId: session.trust.id }, "could not handle a link message; closing the stream");
      session.close(new ConnectError("the hub could not record a message; reconnect and send it again", Code.Unavailable));
      return "the hub could not handle a message";
    }
    if (session.closed) return "the hub closed the stream";
  }
}

export function registerLinkHandlers(router: ConnectRouter, { db, log, registry }: LinkHandlerDeps): void {
  router.service(LinkService, {
    async *connect(requests, ctx) {
      const trust = await authenticateLink(db.em(), ctx.requestHeader);
      const reader = requests[Symbol.asyncIterator]();
      const first = await reader.next();
      const hello = readHello(first.done ? undefined : first.value);
      if (hello.trustCode !== trust.code) {
        log.warn({ trustId: trust.id, trust: trust.code, claimed: hello.trustCode }, "gateway configured for another trust refused");
        throw new ConnectError(
          `this key belongs to trust "${trust.code}", but the gateway is configured for "${hello.trustCode}"; fix FLIP_TRUST_CODE or the key`,
          Code.PermissionDenied,
        );
      }
      const session = await registry.open(trust, hello, streamTraceCarrier(ctx)).catch((err: unknown) => {
        throw err instanceof LinkNoLongerAllowedError ? linkRefused(err.disabled) : err;
      });
      let reason = "";
      const onAbort = () => {
        const why = ConnectError.from(ctx.signal.reason);
        // serve() aborts every handler with Unavailable when the hub shuts down.
        if (why.code === Code.Unavailable) {
          reason = "the hub is shutting down";
          session.close(new ConnectError("the hub is shutting down; reconnect", Code.FailedPrecondition));
        } else {
          reason ||= "the gateway went away";
          session.close();
        }
      };
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      const reading = consume(session, reader, log).then((r) => (reason ||= r));
      try {
        yield* session.outbound;
      } finally {
        ctx.signal.removeEventListener("abort", onAbort);
        session.close();
        await Promise.race([reading, new Promise((r) => setTimeout(r, 100))]);
        await registry.release(session, reason || "the stream ended");
      }
    },
  });
}
