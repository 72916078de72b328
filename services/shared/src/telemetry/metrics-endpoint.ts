import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface MetricsAddress {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

/** The metrics endpoint could not listen where FLIP_METRICS_ADDR says. */
export class MetricsListenError extends Error {
  override readonly name = "MetricsListenError";
  constructor(
    readonly address: MetricsAddress,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why =
      code === "EADDRINUSE"
        ? "another process listens there"
        : code === "EADDRNOTAVAIL" || code === "ENOTFOUND"
          ? "the host is not an address of this machine"
          : code === "EACCES"
            ? "the port needs privileges this process lacks"
            : (code ?? String(cause));
    super(`cannot serve metrics on ${address.host}:${address.port} (FLIP_METRICS_ADDR): ${why}; set FLIP_METRICS_ADDR to a free host:port, or empty to turn metrics off`, { cause });
  }
}

export interface MetricsEndpoint {
  /** e.g. http://127.0.0.1:9464/metrics */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` with `handle` on its own HTTP/1.1 listener; every other path is 404. */
export async function serveMetricsEndpoint(address: MetricsAddress, handle: http.RequestListener): Promise<MetricsEndpoint> {
  const server = http.createServer((req, res) => {
    if (new URL(req.url ?? "/", "http://metrics").pathname !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("metrics are served on GET /metrics\n");
    } else if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
    } else {
      handle(req, res);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => reject(new MetricsListenError(address, e)));
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const host = bound.address.includes(":") ? `[${bound.address}]` : bound.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${bound.port}/metrics`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A scraper keeps its connection alive between scrapes; it must not hold the process open.
        server.closeAllConnections();
      })),
  };
}
