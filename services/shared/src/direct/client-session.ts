import * as http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import { injectTraceContext } from "../telemetry/trace-context.js";
import { ClientCall } from "./client-call.js";
import { MAX_FRAME_BYTES, WINDOW_BYTES } from "./http2-wire.js";

export interface ClientSessionOptions {
  /** The server's base URL, e.g. https://hub.example.org. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>` on every call. */
  bearerToken: string;
  /** TLS and socket options for the HTTP/2 session (e.g. `ca` for a private CA). */
  nodeOptions?: http2.SecureClientSessionOptions;
  /** Largest response message accepted. */
  maxMessageBytes: number;
}

interface Connection {
  session: http2.ClientHttp2Session;
  /** Why the connection failed, once it did. */
  failure?: unknown;
  /** Calls in progress on it. */
  calls: number;
}

/** Response bytes a call buffers before it pauses its stream. */
const CALL_BUFFER_BYTES = 8 * 1024 * 1024;
/** Request bytes a call queues in its stream before `send` waits. */
const SEND_BUFFER_BYTES = 2 * 1024 * 1024;

/**
 * One HTTP/2 connection to a gRPC server, dialled on first use and again after it dies (or the server
 * sends GOAWAY), on which calls open as streams, with the same wide flow-control windows and large
 * frames as the server's end (`http2-wire.ts`). An idle session does not keep the process alive.
 */
export class ClientSession {
  private current: Connection | undefined;
  private readonly origin: string;
  private readonly pathPrefix: string;

  constructor(private readonly opts: ClientSessionOptions) {
    const url = new URL(opts.baseUrl);
    this.origin = url.origin;
    this.pathPrefix = url.pathname.replace(/\/$/, "");
  }

  /** Opens a call of `method`, with the bearer token and the active trace context in its headers. */
  call(method: DescMethod, signal?: AbortSignal): ClientCall {
    const headers: http2.OutgoingHttpHeaders = {
      ...injectTraceContext(),
      ":method": "POST",
      ":path": `${this.pathPrefix}/${method.parent.typeName}/${method.name}`,
      "content-type": "application/grpc+proto",
      te: "trailers",
      "grpc-accept-encoding": "identity",
      authorization: `Bearer ${this.opts.bearerToken}`,
    };
    let connection = this.connected();
    let stream: http2.ClientHttp2Stream;
    try {
      stream = connection.session.request(headers);
    } catch {
      // The connection began closing (e.g. a GOAWAY) since it was last seen open: dial a new one.
      connection.session.close();
      this.current = undefined;
      connection = this.connected();
      stream = connection.session.request(headers);
    }
    // Only a connection with calls in progress keeps the process alive.
    const { session } = connection;
    if (connection.calls++ === 0) session.ref();
    stream.once("close", () => {
      if (--connection.calls === 0 && !session.destroyed) session.unref();
    });
    return new ClientCall(stream, {
      maxMessageBytes: this.opts.maxMessageBytes,
      bufferBytes: CALL_BUFFER_BYTES,
      sendBufferBytes: SEND_BUFFER_BYTES,
      signal,
      connectionFailure: () => connection.failure,
    });
  }

  /** Closes the connection; calls in progress finish first. */
  close(): void {
    this.current?.session.close();
    this.current = undefined;
  }

  private connected(): Connection {
    const cur = this.current;
    if (cur && !cur.session.closed && !cur.session.destroyed) return cur;
    const w = WINDOW_BYTES;
    const settings = { ...this.opts.nodeOptions?.settings, initialWindowSize: w, maxFrameSize: MAX_FRAME_BYTES };
    const session = http2.connect(this.origin, { ...this.opts.nodeOptions, settings });
    const connection: Connection = { session, calls: 0 };
    // The connection's own window starts at 64 KiB whatever the settings say; widen it like the streams'.
    session.once("connect", () => session.setLocalWindowSize(w));
    session.on("error", (e) => (connection.failure = e));
    // Calls in progress finish on the old connection; new ones dial again.
    const forget = () => {
      if (this.current === connection) this.current = undefined;
    };
    session.once("goaway", forget);
    session.once("close", forget);
    session.unref();
    this.current = connection;
    return connection;
  }
}
