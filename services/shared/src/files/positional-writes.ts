import type { FileHandle } from "node:fs/promises";
import { skipBytes } from "../protobuf/parts-reader.js";

/** Writes `data` (pieces in order, not joined) at `position`; resolves once every byte is down. */
export type WriteAt = (data: readonly Uint8Array[], position: number) => Promise<void>;

/** Pieces per write: Linux takes at most 1024 in one writev. */
const MAX_PIECES_PER_WRITE = 1024;

/**
 * Writes of one growing file that overlap what feeds them: while one write is in flight, the bytes that
 * arrive meanwhile are queued and go out together in the next write (one writev of their pieces). One
 * write at a time, because concurrent writes to one file only contend for its lock, while batching keeps
 * the number of writes small whatever the size of the pieces. The bytes queued or in flight are
 * bounded: `add` waits while there are more than `maxBytes`. `written` counts the bytes whose writes
 * have finished, so it is always a safe offset to resume from.
 */
export class PositionalWrites {
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private inFlight: Promise<void> | undefined;
  private inFlightBytes = 0;
  private writtenTo: number;
  /** Where the next queued byte goes. */
  private end: number;
  /** The first write that failed; nothing after it is written. */
  private failure: unknown;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly writeAt: WriteAt,
    /** Where the first write starts: bytes before it are already written. */
    start: number,
    private readonly maxBytes: number,
  ) {
    this.writtenTo = start;
    this.end = start;
  }

  /** Bytes from the start of the file whose writes have all finished. */
  get written(): number {
    return this.writtenTo;
  }

  /**
   * Queues `data` (`length` bytes) to be written at `position`, which must follow the previous bytes.
   * Resolves once the bytes queued or in flight are within the bound; throws a failed write's error.
   */
  async add(data: readonly Uint8Array[], position: number, length: number): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (position !== this.end) throw new Error(`write at ${position} does not follow the previous bytes (they end at ${this.end})`);
    for (const p of data) if (p.length > 0) this.queued.push(p);
    this.queuedBytes += length;
    this.end += length;
    this.pump();
    while (this.failure === undefined && this.queuedBytes + this.inFlightBytes > this.maxBytes) await this.settled();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits until every queued byte is written; throws a failed write's error. */
  async drain(): Promise<void> {
    while (this.failure === undefined && (this.inFlight || this.queued.length > 0)) await this.settled();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits until no write is in flight and never throws: what a caller does before closing the file after a failure. */
  async settle(): Promise<void> {
    while (this.inFlight) await this.settled();
  }

  private pump(): void {
    if (this.inFlight || this.queued.length === 0 || this.failure !== undefined) return;
    const pieces = this.queued.length > MAX_PIECES_PER_WRITE ? this.queued.splice(0, MAX_PIECES_PER_WRITE) : this.queued.splice(0);
    let bytes = 0;
    for (const p of pieces) bytes += p.length;
    this.queuedBytes -= bytes;
    this.inFlightBytes = bytes;
    const at = this.writtenTo;
    this.inFlight = this.writeAt(pieces, at).then(
      () => {
        this.writtenTo = at + bytes;
        this.finishWrite();
        this.pump();
      },
      (e: unknown) => {
        this.failure = e ?? new Error("write failed");
        this.finishWrite();
      },
    );
  }

  private finishWrite(): void {
    this.inFlight = undefined;
    this.inFlightBytes = 0;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves after the write in flight ends (at once when none is). */
  private async settled(): Promise<void> {
    if (!this.inFlight) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

/** Writes every byte of `data` (pieces in order, not joined) at `position`; a write may be short, so it loops. */
export async function writeFully(fh: FileHandle, data: readonly Uint8Array[], position: number): Promise<void> {
  let at = position;
  let rest = data;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, at);
    at += bytesWritten;
    rest = skipBytes(rest, bytesWritten);
  }
}
