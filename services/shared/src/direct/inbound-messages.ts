import { EnvelopeReader, partsLength, type MessageParts } from "./envelope.js";

/** The readable side of an HTTP/2 stream, as far as flow control goes. */
interface PausableStream {
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
}

/**
 * The messages arriving on one HTTP/2 stream (a server's requests or a client's responses), split out
 * of the received chunks and queued until read. Past `bufferBytes` queued the stream is paused, so HTTP/2
 * flow control holds the sender instead of memory growing; reading below half of it resumes the stream.
 */
export class InboundMessages {
  private readonly reader: EnvelopeReader;
  private readonly queue: MessageParts[] = [];
  private queuedBytes = 0;
  private waiter: (() => void) | undefined;

  constructor(
    private readonly stream: PausableStream,
    maxMessageBytes: number,
    private readonly bufferBytes: number,
  ) {
    this.reader = new EnvelopeReader(maxMessageBytes);
  }

  /** Queues the messages a received chunk completes; throws a ConnectError for a malformed or oversized one. */
  accept(chunk: Uint8Array): void {
    this.reader.push(chunk, (m) => {
      this.queue.push(m);
      this.queuedBytes += partsLength(m);
    });
    if (this.queuedBytes > this.bufferBytes) this.stream.pause();
    this.wake();
  }

  /** The oldest queued message, or undefined when none is queued. */
  take(): MessageParts | undefined {
    const next = this.queue.shift();
    if (next) {
      this.queuedBytes -= partsLength(next);
      if (this.stream.isPaused() && this.queuedBytes <= this.bufferBytes / 2) this.stream.resume();
    }
    return next;
  }

  /** Whether the stream stopped inside a message. */
  get midMessage(): boolean {
    return this.reader.midMessage;
  }

  /** Resolves at the next message, or the next `wake()` (the call's state changed). */
  async changed(): Promise<void> {
    await new Promise<void>((resolve) => (this.waiter = resolve));
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
