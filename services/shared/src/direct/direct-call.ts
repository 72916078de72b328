import type * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { reencodeGrpcMessage } from "../server/grpc-message.js";
import type { MessageParts } from "./envelope.js";
import { headersOf, writeMessage } from "./http2-wire.js";
import { InboundMessages } from "./inbound-messages.js";

export interface DirectCallOptions {
  /** Largest request message accepted. */
  maxMessageBytes: number;
  /** Request bytes buffered before the stream is paused (HTTP/2 flow control then holds the sender). */
  bufferBytes: number;
  /** Aborts the call with its reason (e.g. Unavailable when the server shuts down). */
  shutdownSignal: AbortSignal;
}

/**
 * One gRPC call served straight on its HTTP/2 stream (binary protobuf, no compression): what Connect's
 * handler does for a call, minus its per-message copies and per-stream pipeline, for the few paths
 * where those costs count (the link's long-lived streams, artifact bytes). The handler reads request
 * messages, sends response messages, and ends the call with a status.
 */
export class DirectCall {
  readonly requestHeader: Headers;
  readonly signal: AbortSignal;
  private readonly abort = new AbortController();
  private readonly inbound: InboundMessages;
  private requestEnded = false;
  private requestFailure: ConnectError | undefined;
  private responded = false;
  private ended = false;
  private readonly contentType: string;
  private deadline: NodeJS.Timeout | undefined;
  /** The stream closed or failed: nothing more can be sent. */
  private gone = false;
  /** The peer reset the stream (a cancelled call, a broken connection). */
  private peerReset = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    opts: DirectCallOptions,
  ) {
    this.requestHeader = headersOf(headers);
    this.contentType = String(headers["content-type"]);
    this.inbound = new InboundMessages(stream, opts.maxMessageBytes, opts.bufferBytes);
    this.signal = this.abort.signal;
    // Write errors after the peer went away surface here; the call sees them as an aborted signal.
    stream.on("error", () => this.stop(new ConnectError("the HTTP/2 stream failed", Code.Aborted), true));
    stream.on("close", () => this.stop(new ConnectError("the caller went away", Code.Canceled), true));
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("aborted", () => (this.peerReset = true));
    // A peer's reset also ends the readable side, and 'end' comes before 'aborted': decide a tick later
    // whether the request really ended or was cut.
    stream.on("end", () =>
      setImmediate(() => {
        this.requestEnded = true;
        if (this.inbound.midMessage) this.requestFailure ??= new ConnectError("the request stream ended inside a message", Code.InvalidArgument);
        this.wake();
      }),
    );
    const onShutdown = () => this.stop(ConnectError.from(opts.shutdownSignal.reason, Code.Unavailable), false);
    if (opts.shutdownSignal.aborted) onShutdown();
    else {
      opts.shutdownSignal.addEventListener("abort", onShutdown, { once: true });
      this.signal.addEventListener("abort", () => opts.shutdownSignal.removeEventListener("abort", onShutdown), { once: true });
    }
    const timeout = parseTimeout(this.requestHeader.get("grpc-timeout"), 2 ** 31 - 1);
    if (timeout.error) this.requestFailure = timeout.error;
    else if (timeout.timeoutMs !== undefined) {
      this.deadline = setTimeout(() => this.end(new ConnectError("the deadline passed", Code.DeadlineExceeded)), timeout.timeoutMs);
      this.deadline.unref();
    }
  }

  /** Whether the call has ended (a status was sent, or the stream is gone). */
  get closed(): boolean {
    return this.ended || this.gone;
  }

  /**
   * The next request message as it arrived (views into received chunks; they stay valid), or undefined
   * when the request stream ended. Rejects when the stream broke or was malformed.
   */
  async read(): Promise<MessageParts | undefined> {
    for (;;) {
      const next = this.inbound.take();
      if (next) return next;
      if (this.requestFailure) throw this.requestFailure;
      if (this.peerReset) throw new ConnectError("the request stream broke: the caller reset it", Code.Aborted);
      if (this.requestEnded) return undefined;
      if (this.gone || this.ended) throw new ConnectError(`the request stream broke: ${ConnectError.from(this.signal.reason).rawMessage}`, Code.Aborted);
      await this.inbound.changed();
    }
  }

  /**
   * Sends one response message made of `parts` (e.g. an encoded header and a payload, written without
   * joining them). Returns false when the stream's buffer is full: wait for `drained()` before more.
   */
  send(parts: Uint8Array[]): boolean {
    if (this.closed) return false;
    this.respond();
    writeMessage(this.stream, parts);
    return !this.stream.writableNeedDrain;
  }

  /** Resolves when the response stream can take more, or the call ended. */
  async drained(): Promise<void> {
    if (this.closed || !this.stream.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.stream.off("drain", done);
        this.signal.removeEventListener("abort", done);
        resolve();
      };
      this.stream.on("drain", done);
      this.signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Ends the call with OK or `error`'s status; later calls do nothing. */
  end(error?: ConnectError): void {
    if (this.closed) return;
    this.ended = true;
    clearTimeout(this.deadline);
    const status: Record<string, string> = {};
    const trailer = setTrailerStatus(new Headers(), error);
    reencodeGrpcMessage(trailer);
    trailer.forEach((v, k) => (status[k] = v));
    const s = this.stream;
    if (!this.responded) {
      // Trailers-only: the status rides on the response headers.
      this.responded = true;
      s.respond({ ":status": 200, "content-type": this.contentType, ...status }, { endStream: true });
    } else {
      s.once("wantTrailers", () => s.sendTrailers(status));
      s.end();
    }
    if (!this.signal.aborted) this.abort.abort(error ?? new ConnectError("the call ended", Code.Canceled));
    this.wake();
  }

  private respond(): void {
    if (this.responded) return;
    this.responded = true;
    this.stream.respond({ ":status": 200, "content-type": this.contentType, "grpc-accept-encoding": "identity" }, { waitForTrailers: true });
  }

  private onData(chunk: Buffer): void {
    if (this.requestFailure) return;
    try {
      this.inbound.accept(chunk);
    } catch (e) {
      this.requestFailure = ConnectError.from(e);
      this.wake();
    }
  }

  /** Aborts the signal: the stream is gone, or (not gone) the server is shutting down and the handler should end the call. */
  private stop(reason: ConnectError, gone: boolean): void {
    if (gone) {
      this.gone = true;
      clearTimeout(this.deadline);
    }
    if (!this.signal.aborted) this.abort.abort(reason);
    this.wake();
  }

  private wake(): void {
    this.inbound.wake();
  }
}
