import { lstat, rm } from "node:fs/promises";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { createNoopMeter, type Meter } from "@opentelemetry/api";
import type { Logger } from "../logging/logger.js";
import { serverTracing } from "../telemetry/trace-context.js";
import { HealthRegistry, ServingStatus, registerHealth } from "./health.js";
import { routeDirectCalls, type DirectRoute } from "../direct/direct-routes.js";
import { MAX_FRAME_BYTES, WINDOW_BYTES } from "../direct/http2-wire.js";
import type { HeaderCheck } from "./early-refusal.js";
import { connectNodeHandler, type WebRequestHook } from "./node-handler.js";
import { reachableSocketPath } from "./unix-socket-path.js";
import { closeWhenIdle, DEFAULT_TRANSPORT_TIMEOUTS, dropIfSilent, type TransportTimeouts } from "./transport-timeouts.js";
import { registerReflection } from "./reflection.js";
import { validateRequests } from "../validation/validate-requests.js";
import { Health } from "@flip/gen/health/v1/health_pb.js";
import { ServerReflection } from "@flip/gen/grpc/reflection/v1/reflection_pb.js";

export interface ServeOptions {
  /** TCP address; ignored when `path` is set. */
  host?: string;
  /** 0 picks a free port; ignored when `path` is set. */
  port?: number;
  /**
   * A unix socket path to listen on instead of TCP (cleartext only: HTTP/1.1 and h2c, like the TCP
   * listener). A stale socket file that nothing answers on is replaced; one a live server holds is not.
   * A path too long for a unix socket is served through a short alias; `RunningServer.path` is the one to connect to.
   */
  path?: string;
  /** The application services, for reflection and health. */
  services: DescService[];
  routes: (router: ConnectRouter) => void;
  log: Logger;
  interceptors?: Interceptor[];
  /** PEM certificate and key: serve TLS with ALPN (h2 and http/1.1). Without them, h2c and HTTP/1.1 share the port. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  contextValues?: (req: http.IncomingMessage | http2.Http2ServerRequest) => ContextValues;
  /** HTTP/2 PING interval for every session; a peer that does not answer in `pingTimeoutMs` is dropped. */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /**
   * Largest request message accepted, in bytes, after decompression (a gzip bomb is cut there); default
   * 16 MiB. An internet-facing server sets it small and gives RPCs that take large messages (uploads)
   * their own cap in `readMaxBytesFor`.
   */
  readMaxBytes?: number;
  /** Per-RPC read caps ("package.Service/Method" → bytes) above `readMaxBytes`, for uploads. */
  readMaxBytesFor?: Readonly<Record<string, number>>;
  /**
   * Runs on every call's headers before its body is read (all protocols, direct routes too); an error
   * refuses the call, e.g. one without a credential, so that it cannot make the server read a large body.
   */
  checkHeaders?: HeaderCheck;
  /** Transport timeouts (see TransportTimeouts); each defaults to DEFAULT_TRANSPORT_TIMEOUTS. */
  timeouts?: Partial<TransportTimeouts>;
  /**
   * RPCs that gRPC binary callers reach straight on their HTTP/2 stream (the hot paths: the link,
   * artifact bytes); each must also be registered in `routes`, which serves every other protocol.
   */
  direct?: DirectRoute[];
  /**
   * HTTP/2 flow-control window per stream and per connection, in bytes. Larger windows let bulk
   * transfers fill the pipe without waiting for WINDOW_UPDATEs; default 16 MiB.
   */
  http2WindowBytes?: number;
  /** Where the server counts its open HTTP/2 sessions (`flip_http2_sessions_open`); none when absent. */
  meter?: Meter;
  /** Plain HTTP beside the RPCs on the same port (the hub's web console and its CORS); see WebRequestHook. */
  web?: WebRequestHook;
}

export interface RunningServer {
  /** 0 on a unix socket. */
  readonly port: number;
  /** Empty on a unix socket. */
  readonly host: string;
  /** Base URL for clients, e.g. http://127.0.0.1:7770; `unix:<path>` on a unix socket. */
  readonly url: string;
  /** The unix socket path, when the server listens on one. */
  readonly path: string | undefined;
  readonly health: HealthRegistry;
  /** Aborted when the server starts shutting down; long-lived handlers end their streams on it. */
  readonly shutdownSignal: AbortSignal;
  /** Stops accepting, ends streams, and waits up to `graceMs` for calls to finish before cutting connections. */
  close(graceMs?: number): Promise<void>;
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0");

/**
 * Serves Connect, gRPC and gRPC-Web on one port (or unix socket), with grpc.health.v1 and gRPC reflection.
 * Cleartext: a first-bytes sniff sends HTTP/2 prior-knowledge connections to the h2 server and the rest
 * to an HTTP/1.1 server. TLS: one h2 secure server with ALPN and HTTP/1.1 fallback.
 */
export async function serve(opts: ServeOptions): Promise<RunningServer> {
  if (opts.tls && opts.path !== undefined) throw new Error("serve: TLS is not offered on a unix socket path");
  if (opts.path === undefined && (opts.host === undefined || opts.port === undefined)) throw new Error("serve: give a host and port, or a socket path");
  const shutdown = new AbortController();
  const health = new HealthRegistry(opts.services.map((s) => s.typeName));
  const readMaxBytes = opts.readMaxBytes ?? 16 * 1024 * 1024;
  const readMaxBytesFor = new Map(Object.entries(opts.readMaxBytesFor ?? {}));
  const timeouts = { ...DEFAULT_TRANSPORT_TIMEOUTS, ...opts.timeouts };
  const windowBytes = opts.http2WindowBytes ?? WINDOW_BYTES;
  const handler = connectNodeHandler({
    log: opts.log,
    routes(router) {
      opts.routes(router);
      registerHealth(router, health);
      registerReflection(router, [...opts.services, Health, ServerReflection]);
    },
    interceptors: [serverTracing, ...(opts.interceptors ?? []), validateRequests],
    shutdownSignal: shutdown.signal,
    contextValues: opts.contextValues,
    readMaxBytes,
    readMaxBytesFor,
    checkHeaders: opts.checkHeaders,
    requestTimeouts: timeouts,
    web: opts.web,
  });
  const routeDirect = (server: http2.Http2Server | http2.Http2SecureServer) =>
    routeDirectCalls(server, {
      routes: opts.direct ?? [],
      log: opts.log,
      shutdownSignal: shutdown.signal,
      maxMessageBytes: readMaxBytes,
      maxMessageBytesFor: readMaxBytesFor,
      checkHeaders: opts.checkHeaders,
      requestTimeouts: timeouts,
    });
  const http2Settings: http2.Settings = { initialWindowSize: windowBytes, maxFrameSize: MAX_FRAME_BYTES };

  const sessions = new Set<http2.ServerHttp2Session>();
  const sessionsOpen = (opts.meter ?? createNoopMeter()).createUpDownCounter("flip_http2_sessions_open", {
    description: "HTTP/2 sessions open on this process's servers",
    unit: "{session}",
  });
  const sockets = new Set<net.Socket>();
  const pingEvery = opts.pingIntervalMs ?? 30_000;
  const pingTimeout = opts.pingTimeoutMs ?? 10_000;
  const onSession = (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    sessionsOpen.add(1);
    // The connection's own window starts at 64 KiB whatever the settings say; widen it like the streams'.
    session.setLocalWindowSize(windowBytes);
    closeWhenIdle(session, timeouts.idleSessionMs);
    const timer = setInterval(() => {
      if (session.closed || session.destroyed) return;
      const guard = setTimeout(() => session.destroy(new Error("HTTP/2 ping timeout")), pingTimeout);
      guard.unref();
      session.ping((err) => {
        clearTimeout(guard);
        if (err && !session.destroyed) session.destroy(err);
      });
    }, pingEvery);
    timer.unref();
    session.on("close", () => {
      clearInterval(timer);
      sessions.delete(session);
      sessionsOpen.add(-1);
    });
    session.on("error", (err) => opts.log.debug({ err: err.message }, "http2 session error"));
  };

  let listener: net.Server;
  let h1: http.Server | undefined;
  if (opts.tls) {
    const secure = http2.createSecureServer(
      { cert: opts.tls.cert, key: opts.tls.key, allowHTTP1: true, settings: http2Settings, handshakeTimeout: timeouts.firstBytesMs },
      handler,
    );
    routeDirect(secure);
    secure.on("session", onSession);
    listener = secure;
  } else {
    const h2 = http2.createServer({ settings: http2Settings }, handler);
    routeDirect(h2);
    h2.on("session", onSession);
    h1 = http.createServer(
      {
        headersTimeout: timeouts.headersMs,
        // Node's whole-request timeout would also cut a streaming request (an upload over HTTP/1.1); the
        // handler times one-message requests itself (TransportTimeouts.requestMs).
        requestTimeout: 0,
        // How often Node looks for connections past headersMs; its default (30 s) would triple a short limit.
        connectionsCheckingInterval: Math.min(1_000, timeouts.headersMs),
      },
      handler,
    );
    // Node starts the checks behind headersTimeout when an HTTP server starts listening; this one never
    // listens (the sniff hands it its connections), so start them as if it had. close() stops them.
    h1.emit("listening");
    const h1Server = h1;
    listener = net.createServer((socket) => {
      const heard = dropIfSilent(socket, timeouts.firstBytesMs);
      const route = () => {
        const head: Buffer | null = socket.read();
        if (head === null) {
          socket.once("readable", route);
          return;
        }
        heard();
        socket.unshift(head);
        const isH2 = head.subarray(0, H2_PREFACE.length).equals(H2_PREFACE.subarray(0, Math.min(head.length, H2_PREFACE.length)));
        (isH2 ? h2 : h1Server).emit("connection", socket);
      };
      socket.once("readable", route);
    });
  }
  listener.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  // A socket path longer than sun_path allows is bound through a short alias of its directory.
  const socket = opts.path === undefined ? undefined : await reachableSocketPath(opts.path);
  if (socket) await removeStaleSocket(socket.path);
  try {
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      const listening = () => {
        listener.off("error", reject);
        resolve();
      };
      if (socket) listener.listen(socket.path, listening);
      else listener.listen(opts.port, opts.host, listening);
    });
  } catch (e) {
    await socket?.release();
    throw e;
  }

  let closing: Promise<void> | undefined;
  const close = (graceMs = 5_000) =>
    (closing ??= (async () => {
      health.setAll(ServingStatus.NOT_SERVING);
      shutdown.abort(new ConnectError("server is shutting down; reconnect", Code.Unavailable));
      listener.close();
      h1?.close(() => undefined);
      h1?.closeIdleConnections();
      for (const s of sessions) s.close();
      const deadline = Date.now() + graceMs;
      while ((sessions.size > 0 || sockets.size > 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 25));
        h1?.closeIdleConnections();
      }
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      await socket?.release();
    })());

  const where = (): Pick<RunningServer, "port" | "host" | "url" | "path"> => {
    if (socket) return { port: 0, host: "", url: `unix:${socket.path}`, path: socket.path };
    const address = listener.address() as net.AddressInfo;
    const hostForUrl = address.address.includes(":") ? `[${address.address}]` : address.address;
    return { port: address.port, host: address.address, url: `${opts.tls ? "https" : "http"}://${hostForUrl}:${address.port}`, path: undefined };
  };
  return {
    ...where(),
    health,
    shutdownSignal: shutdown.signal,
    close,
  };
}

/**
 * Makes way for a new listener on `socketPath`: a socket file left by a process that ended (nothing
 * accepts on it) is removed; a live one, or a file that is not a socket, is left and the listen fails.
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(socketPath)).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  if (!isSocket) return;
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (!live) await rm(socketPath, { force: true });
}
