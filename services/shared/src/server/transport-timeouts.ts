import type * as http from "node:http";
import type { DescMethod } from "@bufbuild/protobuf";
import * as http2 from "node:http2";
import type * as net from "node:net";

/**
 * How long the server waits for a peer, so that a connection that sends nothing, or trickles its
 * headers or body, cannot hold a socket for minutes. Long-lived calls are not cut: a streaming request
 * (the link, uploads) has no deadline, and HTTP/2 pings find a peer that went away.
 */
export interface TransportTimeouts {
  /** A new connection must send its first bytes (HTTP/2 preface, HTTP/1.1 request line, TLS hello) within this. */
  firstBytesMs: number;
  /** HTTP/1.1: a request's headers must be complete within this. */
  headersMs: number;
  /** A request made of one message (unary and server-streaming RPCs) must have arrived in full within this. */
  requestMs: number;
  /** The same for an RPC with a raised read cap (uploads in one message), whose body may take longer. */
  largeRequestMs: number;
  /** An HTTP/2 connection with no stream open for this long is closed (GOAWAY); clients reconnect. */
  idleSessionMs: number;
}

export const DEFAULT_TRANSPORT_TIMEOUTS: TransportTimeouts = {
  firstBytesMs: 10_000,
  headersMs: 10_000,
  requestMs: 30_000,
  largeRequestMs: 10 * 60_000,
  idleSessionMs: 2 * 60_000,
};

/** Destroys `socket` unless it sends something within `ms`; returns the function that stops the clock once it has. */
export function dropIfSilent(socket: net.Socket, ms: number): () => void {
  const drop = () => socket.destroy();
  socket.setTimeout(ms);
  socket.once("timeout", drop);
  return () => {
    socket.setTimeout(0);
    socket.off("timeout", drop);
  };
}

/** Closes an HTTP/2 session gracefully once it has had no stream open for `ms` (from the start, too). */
export function closeWhenIdle(session: http2.ServerHttp2Session, ms: number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => session.close(), ms);
    timer.unref();
  };
  arm();
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open++;
    clearTimeout(timer);
    stream.once("close", () => {
      if (--open === 0 && !session.closed && !session.destroyed) arm();
    });
  });
  session.once("close", () => clearTimeout(timer));
}

/** How long a call's request may take to arrive: undefined for a streaming request, which is long-lived by design. */
export function requestDeadlineMs(kind: DescMethod["methodKind"], raisedCap: boolean, timeouts: RequestTimeouts): number | undefined {
  if (kind === "client_streaming" || kind === "bidi_streaming") return undefined;
  return raisedCap ? timeouts.largeRequestMs : timeouts.requestMs;
}

export type RequestTimeouts = Pick<TransportTimeouts, "requestMs" | "largeRequestMs">;

/**
 * Cuts a call whose request has not fully arrived `ms` after it began (a trickled body). What comes after
 * the request (a server stream's responses) is not timed. Returns the function that stops the clock.
 */
export function cutIfRequestLate(target: RequestInFlight, ms: number, onCut: () => void): () => void {
  const timer = setTimeout(() => {
    if (receivedInFull(target)) return;
    onCut();
    cutRequest(target);
  }, ms);
  timer.unref();
  return () => clearTimeout(timer);
}

/** Ends a request that will not be served: the HTTP/1.1 connection, or only the HTTP/2 stream. */
export function cutRequest(target: RequestInFlight): void {
  if ("socket" in target) target.socket.destroy();
  else target.stream.close(http2.constants.NGHTTP2_CANCEL);
}

/** An HTTP/1.1 request (its socket is cut) or an HTTP/2 stream (only the stream is cut). */
export type RequestInFlight = { socket: net.Socket; request: http.IncomingMessage } | { stream: http2.ServerHttp2Stream };

/** Whether the peer has sent its whole request, whether or not the handler has read it yet. */
function receivedInFull(target: RequestInFlight): boolean {
  if ("socket" in target) return target.request.complete;
  const state = target.stream.destroyed ? undefined : target.stream.state.state;
  return state === undefined || state === http2.constants.NGHTTP2_STREAM_STATE_HALF_CLOSED_REMOTE || state === http2.constants.NGHTTP2_STREAM_STATE_CLOSED;
}
