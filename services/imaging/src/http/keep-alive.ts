/**
 * HTTP connections to Orthanc (the PACS's DICOMweb, the research store's REST API) over node:http.
 *
 * Not fetch: Orthanc's web server announces "Keep-Alive: timeout=1" and closes idle connections after a
 * second; Node's http agent and fetch then keep a second of margin and never reuse a connection, and
 * undici (fetch) can even fail an internal assertion, killing the process, when such a connection ends
 * under it (seen in the import benchmark). This agent reuses connections for half that second and a
 * request that finds its reused connection closed is sent once more.
 */
import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";

/** Orthanc closes an idle connection after 1 s; ours let go of it after half that. */
const IDLE_REUSE_MS = 500;

/** A keep-alive agent that gives idle connections up before Orthanc does. */
export function shortKeepAliveAgent(secure: boolean): http.Agent {
  const Base = (secure ? https.Agent : http.Agent) as typeof http.Agent;
  class ShortKeepAlive extends Base {
    override keepSocketAlive(socket: Duplex): boolean {
      const s = socket as Duplex & { setKeepAlive(on: boolean): void; setTimeout(ms: number): void; unref(): void };
      s.setKeepAlive(true);
      s.unref();
      // The agent destroys a free socket when it times out.
      s.setTimeout(IDLE_REUSE_MS);
      return true;
    }
  }
  return new ShortKeepAlive({ keepAlive: true, maxSockets: 32 });
}

/** A kept-alive connection the server had closed: the request never reached it, so it may be sent again. */
export class StaleConnection extends Error {
  override readonly name = "StaleConnection";
  constructor(cause: Error) {
    super("reused connection was closed by the server", { cause });
  }
}

/**
 * Sends one request on `agent` and resolves with the response once its headers arrive; rejects with
 * StaleConnection when a reused connection was reset before any answer.
 */
export function requestOnce(
  url: URL,
  opts: { method: string; path: string; headers: Record<string, string | number>; agent: http.Agent; signal: AbortSignal; body?: Uint8Array },
): Promise<http.IncomingMessage> {
  const request = url.protocol === "https:" ? https.request : http.request;
  return new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = request(
      { protocol: url.protocol, hostname: url.hostname, port: url.port, path: url.pathname.replace(/\/+$/, "") + opts.path, method: opts.method, headers: opts.headers, agent: opts.agent, signal: opts.signal },
      resolve,
    );
    req.once("error", (err: NodeJS.ErrnoException) => reject(req.reusedSocket && err.code === "ECONNRESET" ? new StaleConnection(err) : err));
    req.end(opts.body);
  });
}
