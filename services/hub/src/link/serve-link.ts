import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRequest } from "@flip/gen/flip/link/v1/link_pb.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { contextFromHeaders, injectTraceContext } from "@flip/shared/telemetry/trace-context.js";
import type { Database } from "../db/database.js";
import { authenticateTrustCaller, trustKeyRefused } from "../trusts/trust-key-auth.js";
import { gatewayIdOf } from "./gateway-identity.js";
import { readHello } from "./hello.js";
import type { LinkRegistry } from "./link-registry.js";
import type { LinkOutbound, LinkSession } from "./link-session.js";
import { GatewayAlreadyLinkedError, LinkNoLongerAllowedError, recordRefusedGateway } from "./stream-ownership.js";

/**
 * One trust stream from hello to release, whichever way it arrived (Connect's handler, or the direct
 * HTTP/2 path that gRPC gateways take): the transport supplies the request header, a reader of the
 * gateway's messages, where the hub's messages go, and the call's abort signal.
 */
export interface LinkStream {
  header: Headers;
  /** The next message from the gateway; undefined when it ended the stream; throws when the stream broke. */
  read(): Promise<ConnectRequest | undefined>;
  outbound: LinkOutbound;
  /** Aborted when the call ends from outside: the gateway went away, or the server shuts down (Unavailable). */
  signal: AbortSignal;
}

export interface LinkServeDeps {
  db: Database;
  log: Logger;
  registry: LinkRegistry;
}

const CLOSED: unique symbol = Symbol("closed");

/** Authenticates the gateway, reads its hello and makes this stream the trust's link; returns the session, welcomed. */
export async function openLink(deps: LinkServeDeps, stream: LinkStream): Promise<LinkSession> {
  const trust = await authenticateTrustCaller(deps.db.em(), stream.header, deps.log, "LinkService.Connect");
  const hello = { ...readHello(await stream.read()), gateway: gatewayIdOf(stream.header) };
  if (hello.trustCode !== trust.code) {
    deps.log.warn({ trustId: trust.id, trust: trust.code, claimed: hello.trustCode }, "gateway configured for another trust refused");
    throw new ConnectError(
      `this key belongs to trust "${trust.code}", but the gateway is configured for "${hello.trustCode}"; fix FLIP_TRUST_CODE or the key`,
      Code.PermissionDenied,
    );
  }
  // The W3C context the gateway opened the stream with, for messages that belong to no task.
  const carrier = injectTraceContext(contextFromHeaders(stream.header));
  return await deps.registry.open(trust, hello, carrier, stream.outbound).catch(async (err: unknown) => {
    if (err instanceof LinkNoLongerAllowedError) throw trustKeyRefused(err.disabled);
    // Not a refusal of the trust: the gateway retries with back-off and links once the other one is gone.
    if (err instanceof GatewayAlreadyLinkedError) {
      // Counted on the link row, so `flip trust get` shows the operator there is a second gateway to stop.
      await recordRefusedGateway(deps.db.em(), trust.id, hello.gateway ?? "").catch((e: unknown) => deps.log.warn({ err: e }, "could not count a refused gateway"));
      throw new ConnectError(err.message, Code.AlreadyExists);
    }
    throw err;
  });
}

/** Serves an open link until the stream ends, then releases it; returns why it ended. */
export async function runLink(deps: LinkServeDeps, session: LinkSession, stream: LinkStream): Promise<string> {
  let reason = "";
  const onAbort = () => {
    const why = ConnectError.from(stream.signal.reason);
    // serve() aborts every call with Unavailable when the hub shuts down.
    if (why.code === Code.Unavailable) {
      reason ||= "the hub is shutting down";
      session.close(new ConnectError("the hub is shutting down; reconnect", Code.FailedPrecondition));
    } else {
      reason ||= "the gateway went away";
      session.close();
    }
  };
  if (stream.signal.aborted) onAbort();
  else stream.signal.addEventListener("abort", onAbort, { once: true });
  try {
    reason ||= await consume(session, stream, deps.log);
  } finally {
    stream.signal.removeEventListener("abort", onAbort);
    session.close();
    await deps.registry.release(session, reason || "the stream ended");
  }
  return reason;
}

/** Reads the gateway's messages in order until the stream ends; returns why it ended. */
export async function consume(session: LinkSession, stream: Pick<LinkStream, "read">, log: Logger): Promise<string> {
  for (;;) {
    let next: ConnectRequest | undefined | typeof CLOSED;
    try {
      const reading = stream.read();
      // A read the hub stopped waiting for (it closed the session) settles when the transport ends the call.
      reading.catch(() => undefined);
      next = await Promise.race([reading, session.ended.then((): typeof CLOSED => CLOSED)]);
    } catch (e) {
      const err = ConnectError.from(e);
      // A message that does not decode or breaks the input rules is the gateway's to fix: tell it why.
      session.close(err.code === Code.InvalidArgument ? err : undefined);
      if (err.code === Code.InvalidArgument) return `protocol error: ${err.rawMessage}`;
      return session.closeReason ? `the hub closed the stream: ${session.closeReason}` : `the stream broke: ${err.rawMessage}`;
    }
    if (next === CLOSED) return session.closeReason ? `the hub closed the stream: ${session.closeReason}` : "the hub closed the stream";
    if (next === undefined) {
      session.close();
      return "the gateway ended the stream";
    }
    try {
      await session.handle(next);
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
    if (session.closed) return session.closeReason ? `the hub closed the stream: ${session.closeReason}` : "the hub closed the stream";
  }
}
