import { EventEmitter } from "node:events";
import pg from "pg";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { EntityManager } from "@mikro-orm/postgresql";

/**
 * Postgres LISTEN/NOTIFY shared by every module of one hub process: one dedicated connection listens on
 * each channel some module subscribed to; NOTIFY sent inside a transaction is delivered on commit, so a
 * row and its wake-up travel together. This is how several hub replicas wake each other.
 */
export class Notifier {
  private client: pg.Client | undefined;
  private readonly events = new EventEmitter();
  private readonly channels = new Set<string>();
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly databaseUrl: string,
    private readonly log: Logger,
  ) {
    this.events.setMaxListeners(0);
  }

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on("notification", (n) => this.events.emit(n.channel, n.payload ?? ""));
    client.on("error", (err) => {
      this.log.warn({ err: err.message }, "notification connection lost; reconnecting");
      this.scheduleReconnect();
    });
    await client.connect();
    for (const ch of this.channels) await client.query(`listen "${ch}"`);
    this.client = client;
    // Anything sent while disconnected was missed: tell subscribers to re-check their tables.
    this.events.emit("reconnected");
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const old = this.client;
    this.client = undefined;
    old?.end().catch(() => undefined);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.start().catch((err: unknown) => {
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, "notification reconnect failed");
        this.scheduleReconnect();
      });
    }, 500);
  }

  /** Calls `fn(payload)` for each notification on `channel`; returns an unsubscribe function. */
  async subscribe(channel: string, fn: (payload: string) => void): Promise<() => void> {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`invalid channel name ${channel}`);
    if (!this.channels.has(channel)) {
      this.channels.add(channel);
      await this.client?.query(`listen "${channel}"`);
    }
    this.events.on(channel, fn);
    return () => this.events.off(channel, fn);
  }

  /** Calls `fn` after the listening connection was re-established (notifications may have been missed). */
  onReconnect(fn: () => void): () => void {
    this.events.on("reconnected", fn);
    return () => this.events.off("reconnected", fn);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }
}

/** Sends a notification through `em`'s connection (inside its transaction, if any: delivered on commit). */
export async function notify(em: EntityManager, channel: string, payload: string): Promise<void> {
  await em.execute("select pg_notify(?, ?)", [channel, payload]);
}
