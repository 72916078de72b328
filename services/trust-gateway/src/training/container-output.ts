/** Longest line kept from a workload's output; the rest of a longer line is cut. */
export const MAX_LINE_CHARS = 4096;

/**
 * Splits the multiplexed stream of a container without a TTY (Docker's 8-byte frame headers: stream
 * type, 3 zero bytes, big-endian payload length) into lines of stdout and stderr. Partial frames and
 * lines wait for the next chunk; `end` returns what was left unterminated.
 */
export class OutputLines {
  private pending = Buffer.alloc(0);
  private partial: Record<"stdout" | "stderr", string> = { stdout: "", stderr: "" };
  private readonly decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };

  /** The complete lines in `chunk` (with what earlier chunks left), in order. */
  push(chunk: Uint8Array): string[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : Buffer.from(chunk);
    const lines: string[] = [];
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const stream = this.pending[0] === 2 ? "stderr" : "stdout";
      const text = this.partial[stream] + this.decoders[stream].decode(this.pending.subarray(8, 8 + size), { stream: true });
      this.pending = this.pending.subarray(8 + size);
      const parts = text.split("\n");
      this.partial[stream] = parts.pop()!.slice(0, MAX_LINE_CHARS);
      for (const p of parts) lines.push(clipLine(p));
    }
    return lines;
  }

  end(): string[] {
    const rest = [this.partial.stdout, this.partial.stderr].filter((l) => l !== "").map(clipLine);
    this.partial = { stdout: "", stderr: "" };
    return rest;
  }
}

/** A line without its carriage return, cut to MAX_LINE_CHARS. */
export function clipLine(line: string): string {
  const l = line.endsWith("\r") ? line.slice(0, -1) : line;
  return l.length > MAX_LINE_CHARS ? `${l.slice(0, MAX_LINE_CHARS)}…` : l;
}
