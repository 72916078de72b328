import * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { validateResponse, validateTrailer } from "@connectrpc/connect/protocol-grpc";
import type { MessageParts } from "./envelope.js";
import { headersOf, writeMessage } from "./http2-wire.js";
import { InboundMessages } from "./inbound-messages.js";

export interface ClientCallOptions {
  /** Largest response message accepted. */
  maxMessageBytes: number;
  /** Response bytes buffered before the stream is paused (HTTP/2 flow control then holds the server). */
  bufferBytes: number;
  /** Request bytes queued in the stream before `send` waits for them to go out. */
  sendBufferBytes: number;
  signal?: AbortSignal;
  /** Why the connection failed, when it did: a stream that closes without a status is reported with it. */
  connectionFailure: () => unknown;
}

/**
 * One gRPC call on a client HTTP/2 stream (binary protobuf, no compression): the client half of what
 * `direct-call.ts` serves (any gRPC server can answer it). Request messages go out as the buffers they are made of, response
 * messages come back as views into the received chunks, and the status comes from the trailers (or a
 * trailers-only response). Any failure is a ConnectError with the code a gRPC client reports.
 */
export class ClientCall {
  private readonly inbound: InboundMessages;
  private responseHeader: Headers | undefined;
  private trailers: Headers | undefined;
  /** Set once the call ended: undefined for OK, else its error. */
  private outcome: { error: ConnectError | undefined } | undefined;
  private streamError: unknown;

  constructor(
    private readonly stream: http2.ClientHttp2Stream,
    private readonly opts: ClientCallOptions,
  ) {
    this.inbound = new InboundMessages(stream, opts.maxMessageBytes, opts.bufferBytes);
    stream.on("response", (headers) => this.onResponse(headers));
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("trailers", (trailers) => (this.trailers = headersOf(trailers)));
    // The status is decided once every DATA frame before the trailers was read, not when they arrive.
    stream.on("end", () => this.onEnd());
    stream.on("error", (e) => (this.streamError ??= e));
    stream.on("close", () => this.onClose());
    const onAbort = () => this.cancel(opts.signal!.reason);
    if (opts.signal?.aborted) onAbort();
    else if (opts.signal) {
      opts.signal.addEventListener("abort", onAbort, { once: true });
      stream.once("close", () => opts.signal!.removeEventListener("abort", onAbort));
    }
  }

  /**
   * Sends one request message made of `parts`, without joining them. Resolves once the stream can take
   * more; rejects with the call's error if it ended with one. After an OK status (the server answered
   * before reading everything) the message is dropped: the answer stands. `written`, when given, is
   * called once the stream no longer holds the parts (they went to the socket), so they may be reused.
   */
  async send(parts: Uint8Array[], written?: () => void): Promise<void> {
    if (this.outcome) {
      if (this.outcome.error) throw this.outcome.error;
      return;
    }
    writeMessage(this.stream, parts, written);
    if (this.stream.writableLength > this.opts.sendBufferBytes) await this.drained();
  }

  /** Ends the request side: the server sees the end of the request stream. */
  endRequest(): void {
    if (!this.outcome && !this.stream.writableEnded) this.stream.end();
  }

  /** The next response message, or undefined once the call ended OK; rejects with the call's error. */
  async read(): Promise<MessageParts | undefined> {
    for (;;) {
      const next = this.inbound.take();
      if (next) return next;
      if (this.outcome) {
        if (this.outcome.error) throw this.outcome.error;
        return undefined;
      }
      await this.inbound.changed();
    }
  }

  /** Cancels the call (RST_STREAM CANCEL); its pending and later reads fail with Canceled. */
  cancel(reason?: unknown): void {
    if (this.outcome) return;
    this.finish(new ConnectError("the call was cancelled", Code.Canceled, undefined, undefined, reason));
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  private async drained(): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = () => {
        this.stream.off("drain", done);
        this.stream.off("close", done);
        resolve();
      };
      this.stream.on("drain", done);
      this.stream.on("close", done);
    });
    if (this.outcome?.error) throw this.outcome.error;
  }

  private onResponse(headers: http2.IncomingHttpHeaders): void {
    this.responseHeader = headersOf(headers);
    try {
      const { foundStatus, headerError } = validateResponse(Number(headers[":status"]), this.responseHeader);
      // Trailers-only: the status came with the headers, and no message follows.
      if (headerError) this.finish(headerError);
      else if (foundStatus) this.finish(undefined);
    } catch (e) {
      this.finish(ConnectError.from(e));
    }
  }

  private onData(chunk: Buffer): void {
    if (this.outcome) return;
    try {
      this.inbound.accept(chunk);
    } catch (e) {
      this.finish(ConnectError.from(e));
      if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
    }
  }

  private onEnd(): void {
    if (this.outcome) return;
    try {
      validateTrailer(this.trailers ?? new Headers(), this.responseHeader ?? new Headers());
      if (this.inbound.midMessage) throw new ConnectError("the response ended inside a message", Code.Internal);
      this.finish(undefined);
    } catch (e) {
      this.finish(ConnectError.from(e));
    }
  }

  private onClose(): void {
    if (this.outcome) return;
    this.finish(closedWithoutStatus(this.stream.rstCode, this.streamError ?? this.opts.connectionFailure()));
  }

  private finish(error: ConnectError | undefined): void {
    if (this.outcome) return;
    this.outcome = { error };
    this.inbound.wake();
  }
}

/**
 * The error of a stream that closed before its status arrived: a refused or unreachable hub is
 * Unavailable; a connection that broke or a stream the server reset is Aborted (as connect-node reports
 * them), both of which a transfer resumes from.
 */
function closedWithoutStatus(rstCode: number | undefined, cause: unknown): ConnectError {
  const codes = errorCodes(cause);
  if (codes.some((c) => c === "ECONNREFUSED" || c === "ENOTFOUND" || c === "EAI_AGAIN" || c === "ETIMEDOUT" || c === "EHOSTUNREACH")) {
    return new ConnectError(`cannot reach the hub (${codes.join(", ")})`, Code.Unavailable, undefined, undefined, cause);
  }
  if (rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) return new ConnectError("the hub refused the stream", Code.Unavailable, undefined, undefined, cause);
  if (rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM) return new ConnectError("the hub asked to slow down", Code.ResourceExhausted, undefined, undefined, cause);
  const why = codes.length > 0 ? codes.join(", ") : `HTTP/2 stream closed with code ${rstCode ?? 0}`;
  return new ConnectError(`the call broke before its status arrived (${why})`, Code.Aborted, undefined, undefined, cause);
}

/** The Node error codes along an error's cause chain. */
function errorCodes(e: unknown): string[] {
  const codes: string[] = [];
  for (let cur = e, depth = 0; cur instanceof Error && depth < 8; cur = cur.cause, depth++) {
    const code = (cur as NodeJS.ErrnoException).code;
    if (typeof code === "string") codes.push(code);
  }
  return codes;
}
