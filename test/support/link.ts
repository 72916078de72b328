/**
 * Hubs and trust gateways as real processes, for end-to-end tests of the trust link and of anything
 * built on tasks (cohort queries, freezing, imaging, training).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { TaskService, TaskState, type Task } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { spawnService, type ServiceProcess } from "./processes.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { TASK_ENDED_CHANNEL } from "@flip/hub/tasks/channels.js";
import { eventually } from "@flip/shared/testing/eventually.js";

export const ADMIN_TOKEN = "link-test-admin-token-0123456789";

/** Settings that make link tests fast: short heartbeats, quick reconnects, frequent sweeps. */
export const FAST_HUB_ENV: Record<string, string> = {
  FLIP_HEARTBEAT_INTERVAL_MS: "300",
  FLIP_OFFLINE_AFTER_MS: "1500",
  FLIP_SWEEP_INTERVAL_MS: "200",
  FLIP_LOG_LEVEL: "info",
};

export const FAST_GATEWAY_ENV: Record<string, string> = {
  FLIP_GATEWAY_RECONNECT_MIN_MS: "100",
  FLIP_GATEWAY_RECONNECT_MAX_MS: "1000",
  FLIP_GATEWAY_PING_INTERVAL_MS: "1000",
  FLIP_GATEWAY_PING_TIMEOUT_MS: "1000",
  FLIP_GATEWAY_HEALTH_INTERVAL_MS: "1000",
  FLIP_GATEWAY_GPUS: "none",
  FLIP_LOG_LEVEL: "info",
};

export interface HubProc {
  proc: ServiceProcess;
  url: string;
  port: number;
  dataDir: string;
}

/** Starts services/hub/src/main.ts; `port` 0 picks a free one (give a fixed one to restart on the same address). */
export async function startHubProc(opts: { databaseUrl: string; port?: number; name?: string; env?: Record<string, string>; telemetry?: boolean }): Promise<HubProc> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "flip-hub-"));
  const proc = spawnService({
    name: opts.name ?? "hub",
    entry: "services/hub/src/main.ts",
    telemetry: opts.telemetry,
    env: {
      DATABASE_URL: opts.databaseUrl,
      FLIP_HUB_ADDR: `127.0.0.1:${opts.port ?? 0}`,
      FLIP_ADMIN_TOKEN: ADMIN_TOKEN,
      FLIP_HUB_DATA_DIR: dataDir,
      FLIP_HUB_INSTANCE: opts.name ?? "hub",
      ...FAST_HUB_ENV,
      ...opts.env,
    },
  });
  void proc.exited.then(() => rmSync(dataDir, { recursive: true, force: true }));
  const listening = await proc.waitForLog("hub listening", { timeoutMs: 60_000 });
  const url = String(listening.url);
  return { proc, url, port: Number(new URL(url).port), dataDir };
}

export interface GatewayProc {
  proc: ServiceProcess;
  stateDir: string;
  /** The trust's own task log (tasks.jsonl), parsed. */
  taskLog(): { event: string; taskId: string; attempt: number; traceId?: string; at: string }[];
}

/** Starts services/trust-gateway/src/main.ts for one trust. Reuse `stateDir` to restart the same gateway. */
export function startGatewayProc(opts: {
  hubUrl: string;
  trustCode: string;
  key: string;
  stateDir?: string;
  name?: string;
  env?: Record<string, string>;
  telemetry?: boolean;
}): GatewayProc {
  const stateDir = opts.stateDir ?? mkdtempSync(path.join(os.tmpdir(), `flip-gw-${opts.trustCode}-`));
  const proc = spawnService({
    name: opts.name ?? `gateway ${opts.trustCode}`,
    entry: "services/trust-gateway/src/main.ts",
    telemetry: opts.telemetry,
    env: {
      FLIP_HUB_URL: opts.hubUrl,
      FLIP_TRUST_CODE: opts.trustCode,
      FLIP_TRUST_KEY: opts.key,
      FLIP_GATEWAY_STATE_DIR: stateDir,
      ...FAST_GATEWAY_ENV,
      ...opts.env,
    },
  });
  return {
    proc,
    stateDir,
    taskLog() {
      try {
        return readFileSync(path.join(stateDir, "tasks.jsonl"), "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { event: string; taskId: string; attempt: number; at: string });
      } catch {
        return [];
      }
    },
  };
}

/** Waits for the gateway's next "linked to the hub" after log index `since`. */
export async function linked(g: GatewayProc, since = 0, timeoutMs = 30_000): Promise<void> {
  await g.proc.waitForLog("linked to the hub", { since, timeoutMs });
}


export interface AdminClients {
  trusts: Client<typeof TrustService>;
  tasks: Client<typeof TaskService>;
}

export function adminClients(hubUrl: string, token = ADMIN_TOKEN): AdminClients {
  const transport = createGrpcTransport({ baseUrl: hubUrl, interceptors: [bearerAuth(token)] });
  return { trusts: createClient(TrustService, transport), tasks: createClient(TaskService, transport) };
}

const FINAL = new Set([TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.EXPIRED]);

/** Polls GetTask until `until` holds (default: the task ended); returns the task. */
export async function waitForTask(tasks: Client<typeof TaskService>, taskId: string, until: (t: Task) => boolean = (t) => FINAL.has(t.state), timeoutMs = 20_000): Promise<Task> {
  const deadline = Date.now() + timeoutMs;
  let last: Task | undefined;
  while (Date.now() < deadline) {
    last = (await tasks.getTask({ taskId })).task;
    if (last && until(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`task ${taskId} did not reach the expected state in ${timeoutMs} ms (last: ${last ? TaskState[last.state] : "none"})`);
}

/**
 * Listens to the hub's task-ended notices, so a test can assert that every task ended exactly once
 * (a second notice for a task would mean two results were recorded).
 */
export class TaskEndWatcher {
  private readonly ends = new Map<string, string[]>();
  private barriers = 0;
  private constructor(private readonly client: pg.Client) {}

  static async start(databaseUrl: string): Promise<TaskEndWatcher> {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const w = new TaskEndWatcher(client);
    client.on("notification", (n) => {
      const { taskId, state } = JSON.parse(n.payload ?? "{}") as { taskId: string; state: string };
      w.ends.set(taskId, [...(w.ends.get(taskId) ?? []), state]);
    });
    await client.query(`listen ${TASK_ENDED_CHANNEL}`);
    return w;
  }

  /**
   * The final states announced for a task, in order (exactly one when all is well). Waits for the
   * first one (the hub announces an end in the transaction that records it, so it may arrive just
   * after the RPC that caused it has answered), then sends a notification of its own on the same
   * channel and waits for it: PostgreSQL delivers notifications in commit order, so every end
   * committed before that barrier (a duplicate included) has been seen by the time it returns.
   */
  async endsOf(taskId: string, waitMs = 10_000): Promise<string[]> {
    await this.until(() => this.ends.has(taskId), waitMs);
    const barrier = `barrier-${++this.barriers}`;
    await this.client.query("select pg_notify($1, $2)", [TASK_ENDED_CHANNEL, JSON.stringify({ taskId: barrier, state: "barrier" })]);
    await this.until(() => this.ends.has(barrier), waitMs);
    return this.ends.get(taskId) ?? [];
  }

  /** Waits (bounded) until `done` holds; on timeout returns quietly and the caller's assertion tells. */
  private async until(done: () => boolean, waitMs: number): Promise<void> {
    await eventually(done, Boolean, { timeoutMs: waitMs, everyMs: 10 }).catch(() => undefined);
  }

  async stop(): Promise<void> {
    await this.client.end();
  }
}

/** A task's attempts as the hub recorded them. */
export async function attemptsOf(databaseUrl: string, taskId: string): Promise<{ attempt: number; outcome: string | null; hub_instance: string }[]> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    return (await c.query("select attempt, outcome, hub_instance from task_attempt where task_id = $1 order by attempt", [taskId])).rows;
  } finally {
    await c.end();
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}
