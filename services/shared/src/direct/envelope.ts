import { Code, ConnectError } from "@connectrpc/connect";

/**
 * gRPC's length-prefixed messages ("envelopes"): one flags byte, a 4-byte big-endian length, then the
 * message. Read here without copying the bytes of a message that arrives in one chunk, and without
 * joining the pieces of one that arrives in several (a 1 MiB artifact chunk spans dozens of reads).
 */

export const ENVELOPE_HEADER_BYTES = 5;
const FLAG_COMPRESSED = 0b0000_0001;

/** The 5-byte prefix of an uncompressed message of `length` bytes. */
export function envelopeHeader(length: number): Buffer {
  const h = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES);
  h[0] = 0;
  h.writeUInt32BE(length, 1);
  return h;
}

/** A message as it arrived: one or more views into the received chunks, in order. */
export type MessageParts = Uint8Array[];

/** Total bytes of a message's parts. */
export function partsLength(parts: MessageParts): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

/** The message as one array: the part itself when there is one, else a copy of all of them. */
export function joinParts(parts: MessageParts): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  return Buffer.concat(parts, partsLength(parts));
}

/**
 * Splits a byte stream into messages. Feed it every chunk in order; it calls `onMessage` for each
 * complete message with views into those chunks (a chunk must not be modified afterwards, which holds
 * for what a Node stream emits). A compressed or oversized message is refused with the status a gRPC
 * server would give.
 */
export class EnvelopeReader {
  private readonly head = Buffer.alloc(ENVELOPE_HEADER_BYTES);
  private headFill = 0;
  /** Bytes the current message still needs; -1 while reading a header. */
  private need = -1;
  private parts: Uint8Array[] = [];

  constructor(private readonly maxMessageBytes: number) {}

  push(chunk: Uint8Array, onMessage: (parts: MessageParts) => void): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.need < 0) {
        const take = Math.min(ENVELOPE_HEADER_BYTES - this.headFill, chunk.length - at);
        this.head.set(chunk.subarray(at, at + take), this.headFill);
        this.headFill += take;
        at += take;
        if (this.headFill < ENVELOPE_HEADER_BYTES) return;
        this.headFill = 0;
        const flags = this.head[0]!;
        const length = this.head.readUInt32BE(1);
        if (flags & FLAG_COMPRESSED) throw new ConnectError("compressed message without a negotiated encoding; send messages uncompressed", Code.Internal);
        if (flags !== 0) throw new ConnectError(`unexpected envelope flags 0x${flags.toString(16)}`, Code.Internal);
        if (length > this.maxMessageBytes) {
          throw new ConnectError(`message size ${length} is larger than the configured limit of ${this.maxMessageBytes} bytes`, Code.ResourceExhausted);
        }
        if (length === 0) {
          onMessage([new Uint8Array(0)]);
          continue;
        }
        this.need = length;
        continue;
      }
      const take = Math.min(this.need, chunk.length - at);
      this.parts.push(chunk.subarray(at, at + take));
      this.need -= take;
      at += take;
      if (this.need === 0) {
        const parts = this.parts;
        this.parts = [];
        this.need = -1;
        onMessage(parts);
      }
    }
  }

  /** Whether the stream stopped inside a message. */
  get midMessage(): boolean {
    return this.need >= 0 || this.headFill > 0;
  }
}
