/**
 * Reads protobuf wire primitives from a message that arrived in several pieces (views into received
 * chunks, as `direct/envelope.ts` hands them over) without joining them. A decoder reads a message's
 * small head this way and keeps the payload after it as views: a 1 MiB field is never copied.
 */
export class PartsReader {
  private part = 0;
  private at = 0;
  private consumed = 0;
  readonly length: number;

  constructor(private readonly parts: readonly Uint8Array[]) {
    let n = 0;
    for (const p of parts) n += p.length;
    this.length = n;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.length - this.consumed;
  }

  /** The next byte, or undefined at the end. */
  byte(): number | undefined {
    while (this.part < this.parts.length && this.at === this.parts[this.part]!.length) {
      this.part++;
      this.at = 0;
    }
    if (this.part === this.parts.length) return undefined;
    this.consumed++;
    return this.parts[this.part]![this.at++];
  }

  /**
   * The next varint as a number; undefined when it is malformed, runs past the end, or exceeds 2^53 - 1
   * (a caller then falls back to a full decoder, which handles 64-bit values).
   */
  varint(): number | undefined {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      const b = this.byte();
      if (b === undefined) return undefined;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return Number.isSafeInteger(value) ? value : undefined;
    }
    return undefined;
  }

  /** Everything not read yet, as views into the pieces (no copy); the reader is then at the end. */
  rest(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (; this.part < this.parts.length; this.part++, this.at = 0) {
      const p = this.parts[this.part]!;
      if (this.at < p.length) out.push(this.at === 0 ? p : p.subarray(this.at));
    }
    this.consumed = this.length;
    return out;
  }
}

/** The pieces after the first `n` bytes, as views (no copy). */
export function skipBytes(pieces: readonly Uint8Array[], n: number): readonly Uint8Array[] {
  if (n <= 0) return pieces;
  let i = 0;
  let left = n;
  while (i < pieces.length && left >= pieces[i]!.length) left -= pieces[i++]!.length;
  if (i === pieces.length) return [];
  return left === 0 ? pieces.slice(i) : [pieces[i]!.subarray(left), ...pieces.slice(i + 1)];
}
