import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { ConnectRequestSchema, KindCapacitySchema, LinkService, type ConnectRequest, type ConnectResponse, type Welcome } from "@flip/gen/flip/link/v1/link_pb.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { AsyncQueue } from "@flip/shared/streams/async-queue.js";
import { clientTracing, extractTraceContext, injectTraceContext, tracer } from "@flip/shared/telemetry/trace-context.js";
import type { GatewayConfig } from "../config.js";
import type { HealthSource } from "../health/health-reporter.js";
import type { LinkMessage, TaskRunner } from "../tasks/task-runner.js";
import { Backoff, sleep } from "./backoff.js";
import { GATEWAY_ID_HEADER, newGatewayId } from "./gateway-identity.js";
import { HubSilentError, refusalOf, TrustMismatchError } from "./link-errors.js";

export type LinkConfig = Pick<
  GatewayConfig,
  "hubUrl" | "trustCode" | "trustKey" | "hubCa" | "pingIntervalMs" | "pingTimeoutMs" | "reconnectMinMs" | "reconnectMaxMs"
>;

export interface HubLinkDeps {
  config: LinkConfig;
  log: Logger;
  runner: TaskRunner;
  health: HealthSource;
  capacity: MessageInitShape<typeof KindCapacitySchema>[];
  gatewayVersion: string;
}

export type LinkState = "connecting" | "linked" | "waiting" | "stopped";

/** Heartbeats from the hub may be this many intervals late before the link counts as dead. */
const SILENCE_INTERVALS = 3;

/**
 * The gateway's one connection to the hub: dials out, holds the LinkService.Connect stream, and
 * reconnects with jittered exponential backoff whenever it breaks, logging why. It stops for good
 * only when the hub refuses the trust (bad key, disabled trust, wrong trust), because retrying
 * cannot fix that.
 */
export class HubLink {
  private stateValue: LinkState = "connecting";
  private outbound: AsyncQueue<ConnectRequest> | undefined;
  private readonly stopping = new AbortController();
  private readonly sessions: Http2SessionManager;
  private readonly client;
  private readonly backoff: Backoff;
  /** Who this process is to the hub, the same on every reconnect. */
  private readonly gatewayId = newGatewayId();
  private welcomeValue: Welcome | undefined;
  private readonly linkedListeners = new Set<(w: Welcome) => void>();
  /** Resolves when the link is stopped; rejects with LinkRefusedError when the hub refuses the trust. */
  readonly done: Promise<void>;

  constructor(private readonly deps: HubLinkDeps) {
    const { config } = deps;
    this.backoff = new Backoff(config.reconnectMinMs, config.reconnectMaxMs);
    // Our own session manager so close() can tear the HTTP/2 connection down. Pings run while the
    // stream is open, which is whenever the link is up; idle pings are off because connect-node 2.2
    // re-arms the idle ping timer on a session it already destroyed (an uncaught ERR_HTTP2_INVALID_SESSION).
    this.sessions = new Http2SessionManager(
      config.hubUrl,
      { pingIntervalMs: config.pingIntervalMs, pingTimeoutMs: config.pingTimeoutMs, pingIdleConnection: false },
      config.hubCa ? { ca: config.hubCa } : undefined,
    );
    this.client = createClient(
      LinkService,
      createGrpcTransport({ baseUrl: config.hubUrl, sessionManager: this.sessions, interceptors: [clientTracing] }),
    );
    this.done = this.loop();
  }

  get state(): LinkState {
    return this.stateValue;
  }

  /** The hub's Welcome on the current stream, when linked. */
  get welcome(): Welcome | undefined {
    return this.stateValue === "linked" ? this.welcomeValue : undefined;
  }

  /** Calls `fn` on every Welcome (each time the link comes up); returns an unsubscribe function. */
  onLinked(fn: (w: Welcome) => void): () => void {
    this.linkedListeners.add(fn);
    return () => this.linkedListeners.delete(fn);
  }

  /** Sends a message on the current stream; false when not linked (the caller keeps what matters). */
  send(message: LinkMessage, traceContext: Record<string, string>): boolean {
    if (this.stateValue !== "linked" || !this.outbound) return false;
    return this.outbound.push(create(ConnectRequestSchema, { message, traceContext }));
  }

  async stop(): Promise<void> {
    this.stopping.abort(new ConnectError("the gateway is stopping", Code.Canceled));
    await this.done.catch(() => undefined);
    this.sessions.abort();
  }

  private async loop(): Promise<void> {
    const { log } = this.deps;
    while (!this.stopping.signal.aborted) {
      this.stateValue = "connecting";
      let reason: string;
      let code: string | undefined;
      const started = Date.now();
      try {
        reason = await this.holdStream();
      } catch (e) {
        const refusal = refusalOf(e);
        if (refusal) {
          this.stateValue = "stopped";
          this.sessions.abort();
          throw refusal;
        }
        if (this.stopping.signal.aborted) break;
        const err = ConnectError.from(e);
        code = Code[err.code];
        reason = e instanceof HubSilentError ? e.message : err.rawMessage;
      }
      if (this.stopping.signal.aborted) break;
      // Dial a fresh connection next time: the old one may belong to a hub that is going away (it sent
      // GOAWAY and waits, up to its grace period, for this connection to close before it can exit).
      this.sessions.abort();
      this.stateValue = "waiting";
      const waitMs = this.backoff.next();
      if (code === Code[Code.AlreadyExists]) {
        // Another gateway process of this trust holds the link; this one takes over once that one stops.
        log.error({ reason, retryInMs: waitMs }, "another gateway of this trust is linked to the hub; waiting for it to stop");
      } else {
        log.warn({ reason, code, linkedForMs: Date.now() - started, retryInMs: waitMs, failures: this.backoff.failures }, "link to the hub lost; reconnecting");
      }
      await sleep(waitMs, this.stopping.signal);
    }
    this.stateValue = "stopped";
  }

  /** Opens one stream and serves it until it ends; returns (or throws) why it ended. */
  private async holdStream(): Promise<string> {
    const { config, runner, health } = this.deps;
    const streamAbort = new AbortController();
    const onStop = () => streamAbort.abort(this.stopping.signal.reason);
    this.stopping.signal.addEventListener("abort", onStop, { once: true });
    // One span per stream: hello and heartbeats carry its context, so every message has a trace.
    const streamSpan = tracer.startSpan("gateway.link", { attributes: { "flip.trust": config.trustCode } }, ROOT_CONTEXT);
    const streamContext = trace.setSpan(ROOT_CONTEXT, streamSpan);
    const streamCarrier = injectTraceContext(streamContext);
    const outbound = new AsyncQueue<ConnectRequest>();
    outbound.push(
      create(ConnectRequestSchema, {
        message: {
          case: "hello",
          value: {
            trustCode: config.trustCode,
            gatewayVersion: this.deps.gatewayVersion,
            capacity: this.deps.capacity,
            inFlight: runner.inFlight(),
            health: health.snapshot(),
          },
        },
        traceContext: streamCarrier,
      }),
    );
    let lastHeard = Date.now();
    let heartbeat: NodeJS.Timeout | undefined;
    // Until Welcome there are no heartbeats to miss; a connection that never gets one (a half-open
    // path, a stuck proxy) is abandoned after this long.
    const welcomeTimeoutMs = Math.max(5_000, config.pingIntervalMs + config.pingTimeoutMs);
    const welcomeTimer = setTimeout(
      () => streamAbort.abort(new HubSilentError(`no welcome from the hub within ${Math.round(welcomeTimeoutMs / 1000)} s`)),
      welcomeTimeoutMs,
    );
    try {
      const responses = context.with(streamContext, () =>
        this.client.connect(outbound, { signal: streamAbort.signal, headers: { authorization: `Bearer ${config.trustKey}`, [GATEWAY_ID_HEADER]: this.gatewayId } }),
      );
      for await (const res of responses) {
        lastHeard = Date.now();
        if (res.message.case === "welcome") {
          clearTimeout(welcomeTimer);
          heartbeat = this.linked(res.message.value, outbound, streamAbort, streamCarrier, () => lastHeard);
          continue;
        }
        if (this.stateValue !== "linked") throw new ConnectError(`the hub sent ${res.message.case} before welcome`, Code.Internal);
        this.dispatch(res);
      }
      return "the hub ended the stream";
    } catch (e) {
      if (streamAbort.signal.reason instanceof HubSilentError) {
        // Our own silence detector fired: the HTTP/2 connection itself is suspect (a half-open path
        // looks "open" to the client), so drop it and dial a fresh one next time.
        this.sessions.abort(streamAbort.signal.reason);
        throw streamAbort.signal.reason;
      }
      throw e;
    } finally {
      streamSpan.end();
      clearTimeout(welcomeTimer);
      clearInterval(heartbeat);
      this.stopping.signal.removeEventListener("abort", onStop);
      this.outbound = undefined;
      if (this.stateValue === "linked") this.stateValue = "waiting";
      outbound.end();
      streamAbort.abort();
    }
  }

  /** Welcome received: check the hub named our trust, then start heartbeats and resend held results. */
  private linked(
    w: Welcome,
    outbound: AsyncQueue<ConnectRequest>,
    streamAbort: AbortController,
    traceContext: Record<string, string>,
    lastHeard: () => number,
  ): NodeJS.Timeout {
    const { config, runner, health, log } = this.deps;
    if (w.trustCode !== config.trustCode) throw new TrustMismatchError(config.trustCode, w.trustCode);
    this.welcomeValue = w;
    this.outbound = outbound;
    this.stateValue = "linked";
    this.backoff.reset();
    const intervalMs = w.heartbeatInterval ? Math.max(100, durationMs(w.heartbeatInterval)) : 10_000;
    log.info({ trustId: w.trustId, hubInstance: w.hubInstance, heartbeatIntervalMs: intervalMs, inFlight: runner.inFlight().length }, "linked to the hub");
    runner.resendResults(traceContext);
    for (const fn of this.linkedListeners) fn(w);
    const timer = setInterval(() => {
      const silentMs = Date.now() - lastHeard();
      if (silentMs > SILENCE_INTERVALS * intervalMs) {
        streamAbort.abort(new HubSilentError(`no message from the hub for ${Math.round(silentMs / 1000)} s`));
        return;
      }
      outbound.push(create(ConnectRequestSchema, { message: { case: "heartbeat", value: { sentAt: timestampNow(), health: health.snapshot() } }, traceContext }));
    }, intervalMs);
    timer.unref();
    return timer;
  }

  private dispatch(res: ConnectResponse): void {
    const { runner, log } = this.deps;
    const m = res.message;
    switch (m.case) {
      case "offer":
        runner.offer(m.value, extractTraceContext(res.traceContext, ROOT_CONTEXT));
        return;
      case "cancel":
        runner.cancel(m.value);
        return;
      case "resultAck":
        runner.resultAcknowledged(m.value);
        return;
      case "heartbeat":
        return;
      case "welcome":
      case undefined:
        log.debug({ message: m.case }, "unexpected message from the hub ignored");
    }
  }
}
