import * as net from "node:net";

/** Which way bytes flow through the proxy: "up" is client to target, "down" target to client. */
export type Direction = "up" | "down";

/**
 * A TCP proxy for fault injection between a client and a real server: counts the bytes it forwards and
 * can cut every connection after a given number of further bytes, as a dropped network link would.
 */
export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** http://host:port, for clients that dial the target through the proxy. */
  readonly url: string;
  /** Bytes forwarded so far, over all connections. */
  bytes(direction: Direction): number;
  /**
   * Destroys every open connection once `after` more bytes have been forwarded in `direction` (the last
   * chunk is forwarded only up to that count). One-shot; resolves when the cut happened.
   */
  cutAfter(after: number, direction: Direction): Promise<void>;
  /** Destroys every open connection now. */
  cutAll(): void;
  /** Delays every chunk, in both directions, by `ms` (order is kept); 0 to stop delaying. */
  setDelay(ms: number): void;
  /** While on, bytes are read and dropped: connections stay open but nothing arrives (a dead link that sends no reset). */
  blackhole(on: boolean): void;
  /** While on, new connections are closed as soon as they arrive. */
  refuse(on: boolean): void;
  /** Client connections currently open. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const totals: Record<Direction, number> = { up: 0, down: 0 };
  const open = new Set<net.Socket>();
  let fault: { direction: Direction; remaining: number; fired: () => void } | undefined;
  let delayMs = 0;
  let dropping = false;
  let refusing = false;

  const cutAll = () => {
    for (const s of open) s.destroy();
  };

  /** Forwards `from` to `to`, with backpressure, counting bytes and applying an armed fault. */
  const forward = (from: net.Socket, to: net.Socket, direction: Direction) => {
    let lastDue = 0;
    from.on("data", (chunk: Buffer) => {
      if (dropping) return;
      if (delayMs > 0 || lastDue > Date.now()) {
        // Delayed chunks keep their order even when the delay shrinks.
        const due = Math.max(Date.now() + delayMs, lastDue);
        lastDue = due;
        setTimeout(() => {
          if (!to.destroyed) to.write(chunk);
        }, due - Date.now());
        return;
      }
      let data = chunk;
      const f = fault?.direction === direction ? fault : undefined;
      const cut = f !== undefined && data.length >= f.remaining;
      if (f) {
        if (cut) data = data.subarray(0, f.remaining);
        f.remaining -= data.length;
      }
      totals[direction] += data.length;
      if (data.length > 0 && !to.write(data)) {
        from.pause();
        to.once("drain", () => from.resume());
      }
      if (cut) {
        fault = undefined;
        // Let the partial chunk reach the socket buffer before the link "drops".
        setImmediate(() => {
          cutAll();
          f.fired();
        });
      }
    });
    from.on("end", () => to.end());
  };

  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on("close", () => {
        open.delete(s);
        // One side gone: the connection is gone.
        client.destroy();
        upstream.destroy();
      });
      s.on("error", () => undefined);
    }
    forward(client, upstream, "up");
    forward(upstream, client, "down");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    host: "127.0.0.1",
    port,
    url: `http://127.0.0.1:${port}`,
    bytes: (direction) => totals[direction],
    cutAfter: (after, direction) =>
      new Promise<void>((fired) => {
        fault = { direction, remaining: after, fired };
      }),
    cutAll,
    setDelay(ms) {
      delayMs = ms;
    },
    blackhole(on) {
      dropping = on;
    },
    refuse(on) {
      refusing = on;
    },
    get connections() {
      return open.size / 2;
    },
    async close() {
      fault = undefined;
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
