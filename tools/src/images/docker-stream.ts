/** The engine reported an error in the middle of a build, import or load (HTTP 200, then an error line). */
export class DockerStreamError extends Error {
  override readonly name = "DockerStreamError";
}

/**
 * Reads the engine's JSON-lines progress stream (build, import, load) to its end, handing each object to
 * `onObject`; rejects with the engine's message when a line carries an error.
 */
export function followDockerStream(stream: NodeJS.ReadableStream, onObject?: (o: Record<string, unknown>) => void): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const out: Record<string, unknown>[] = [];
    let buf = "";
    let failed: Error | undefined;
    const line = (text: string) => {
      if (!text.trim()) return;
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(text) as Record<string, unknown>;
      } catch {
        o = { stream: text };
      }
      out.push(o);
      if (o.error || o.errorDetail) {
        const detail = o.errorDetail as { message?: string } | undefined;
        failed ??= new DockerStreamError(String(detail?.message ?? o.error));
      }
      onObject?.(o);
    };
    stream.on("data", (chunk: Buffer | string) => {
      buf += chunk.toString();
      for (let at = buf.indexOf("\n"); at >= 0; at = buf.indexOf("\n")) {
        line(buf.slice(0, at));
        buf = buf.slice(at + 1);
      }
    });
    stream.on("error", reject);
    stream.on("end", () => {
      line(buf);
      if (failed) reject(failed);
      else resolve(out);
    });
  });
}
