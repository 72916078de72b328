/**
 * `npm run bench -- link --trusts N --tasks M [--rate R] [--concurrency C] [--json]`
 *
 * Starts PostgreSQL (DATABASE_URL's server, or an embedded one), a hub process, and N simulated
 * gateways in this process (one HTTP/2 connection and stream each). Measures the hub's memory idle
 * and per linked trust, then creates echo tasks through TaskService, round-robin over the trusts, in
 * two phases of M tasks: paced at R per second (latency: created → result recorded, read back from
 * the task table), then C creations in flight at once (throughput). The same creation times are fed
 * to a model of the original 5 s poller for comparison.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { TaskService } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "@flip/gen/health/v1/health_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { freePort, startEmbeddedPostgres, type RunningPostgres } from "@flip/shared/postgres/embedded.js";
import { startSimulatedGateways } from "@flip/trust-gateway/simulation/simulated-gateways.js";
import { percentile, simulatePolling } from "./polling-model.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";

const root = path.resolve(import.meta.dirname, "../../..");
const ADMIN_TOKEN = randomBytes(24).toString("base64url");
const POLL_INTERVAL_MS = 5_000;
const HEARTBEAT_INTERVAL_MS = 10_000;

const log = createLogger({ service: "bench", level: process.env.FLIP_LOG_LEVEL ?? "warn" });
const progress = (msg: string) => process.stderr.write(`[bench link] ${msg}\n`);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The smallest RSS over a few samples: garbage not yet collected inflates single readings. */
async function settledRssMb(pid: number, ms = 3_000): Promise<number> {
  let min = Infinity;
  for (let waited = 0; waited < ms; waited += 250) {
    min = Math.min(min, rssMb(pid));
    await new Promise((r) => setTimeout(r, 250));
  }
  return min;
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
  }));
}

async function databaseServer(): Promise<{ adminUrl: string; stop(): Promise<void> }> {
  const external = process.env.DATABASE_URL;
  if (external) return { adminUrl: external, stop: async () => {} };
  const dataDir = path.join(root, ".tmp", `bench-pg-${process.pid}`);
  const server: RunningPostgres = await startEmbeddedPostgres({ dataDir, port: 0, databases: [], log });
  return {
    adminUrl: server.urlFor("postgres"),
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      trusts: { type: "string", default: "100" },
      tasks: { type: "string", default: "1000" },
      rate: { type: "string", default: "50" },
      concurrency: { type: "string", default: "32" },
      json: { type: "boolean", default: false },
    },
  });
  const trusts = Number(values.trusts);
  const taskCount = Number(values.tasks);
  const rate = Number(values.rate);
  const concurrency = Number(values.concurrency);
  if (![trusts, taskCount, rate, concurrency].every((n) => Number.isInteger(n) && n > 0)) {
    process.stderr.write("usage: npm run bench -- link --trusts N --tasks M [--rate R] [--concurrency C] [--json]\n");
    return 2;
  }

  const pgServer = await databaseServer();
  const dbName = `bench_link_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: pgServer.adminUrl });
  await admin.connect();
  await admin.query(`create database "${dbName}"`);
  await admin.end();
  const dbUrl = new URL(pgServer.adminUrl);
  dbUrl.pathname = `/${dbName}`;

  const port = await freePort();
  const hubUrl = `http://127.0.0.1:${port}`;
  // FLIP_BENCH_HUB_NODE_OPTIONS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the hub.
  const hubNodeArgs = (process.env.FLIP_BENCH_HUB_NODE_OPTIONS ?? "").split(" ").filter(Boolean);
  const hub = spawn(process.execPath, [...hubNodeArgs, "--import", "tsx", path.join(root, "services/hub/src/main.ts")], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: dbUrl.toString(),
      FLIP_HUB_ADDR: `127.0.0.1:${port}`,
      FLIP_ADMIN_TOKEN: ADMIN_TOKEN,
      FLIP_HUB_DATA_DIR: path.join(root, ".tmp", `bench-hub-${process.pid}`),
      FLIP_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS),
      // Per-task info lines would measure pino, not the link.
      FLIP_LOG_LEVEL: "warn",
      OTEL_SDK_DISABLED: "true",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const hubExited = new Promise<number | null>((r) => hub.once("exit", (code) => r(code)));
  const swarms: Awaited<ReturnType<typeof startSimulatedGateways>>[] = [];
  const auth = bearerAuth(ADMIN_TOKEN);
  const transport = createGrpcTransport({ baseUrl: hubUrl, interceptors: [auth] });
  try {
    const health = createClient(Health, transport);
    for (let i = 0; ; i++) {
      const ok = await health.check({}).then((r) => r.status === HealthCheckResponse_ServingStatus.SERVING, () => false);
      if (ok) break;
      if (i > 600) throw new Error("the hub did not start within 60 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    progress(`hub up (pid ${hub.pid}); registering ${trusts} trusts`);
    const trustClient = createClient(TrustService, transport);
    const codes = Array.from({ length: trusts }, (_, i) => `b${String(i).padStart(5, "0")}`);
    const keys = new Map<string, string>();
    await pool(codes, 8, async (code) => {
      keys.set(code, (await trustClient.registerTrust({ name: `Bench trust ${code}`, code })).apiKey);
    });
    const baselineMb = await settledRssMb(hub.pid!);

    // Linked in two halves: the second half's growth is the marginal cost of an idle trust, without
    // the one-off costs the first connections pay (compiled code, buffers, heap growth).
    progress(`linking ${trusts} simulated gateways`);
    const half = Math.ceil(trusts / 2);
    let connectS = 0;
    const link = async (part: string[]) => {
      const started = performance.now();
      swarms.push(await startSimulatedGateways({ hubUrl, trusts: part.map((code) => ({ code, key: keys.get(code)! })), log, connectConcurrency: 50 }));
      connectS += (performance.now() - started) / 1000;
    };
    await link(codes.slice(0, half));
    const halfMb = await settledRssMb(hub.pid!, 4_000);
    await link(codes.slice(half));
    const idleMb = await settledRssMb(hub.pid!, 4_000);

    const listener = new pg.Client({ connectionString: dbUrl.toString() });
    await listener.connect();
    await listener.query("listen flip_task_ended");
    let peakMb = idleMb;
    const sampler = setInterval(() => (peakMb = Math.max(peakMb, rssMb(hub.pid!))), 200);
    const tasks = createClient(TaskService, transport);
    const createMs: number[] = [];
    const create = async (i: number) => {
      const started = performance.now();
      const id = (await tasks.createEchoTask({ trust: codes[i % trusts]!, message: `bench ${i}` })).task!.id;
      createMs.push(performance.now() - started);
      return id;
    };

    /** Runs one phase: creates `taskCount` tasks with `issue`, waits until all ended, reads their times back. */
    const phase = async (issue: (create: (i: number) => Promise<string>) => Promise<string[]>) => {
      let ended = 0;
      const allEnded = new Promise<void>((resolve) => {
        const onEnd = () => {
          if (++ended === taskCount) {
            listener.off("notification", onEnd);
            resolve();
          }
        };
        listener.on("notification", onEnd);
      });
      const ids = await issue(create);
      await Promise.race([allEnded, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${ended} of ${taskCount} tasks ended within 10 minutes`)), 600_000))]);
      const rows = (
        await listener.query<{ trust_id: string; state: string; created: string; offered: string; ended: string }>(
          `select t.trust_id, t.state, extract(epoch from t.created_at) * 1000 as created, extract(epoch from a.offered_at) * 1000 as offered,
                  extract(epoch from t.ended_at) * 1000 as ended
           from task t join task_attempt a on a.task_id = t.id and a.attempt = t.attempt
           where t.id in (select value::uuid from jsonb_array_elements_text($1::jsonb))`,
          [JSON.stringify(ids)],
        )
      ).rows.map((r) => ({ trust: r.trust_id, state: r.state, created: Number(r.created), offered: Number(r.offered), ended: Number(r.ended) }));
      const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
      return {
        rows,
        failed: rows.filter((r) => r.state !== "succeeded").length,
        latencies: sorted(rows.map((r) => r.ended - r.created)),
        toOffer: sorted(rows.map((r) => r.offered - r.created)),
        service: sorted(rows.map((r) => r.ended - r.offered)),
        spanS: (Math.max(...rows.map((r) => r.ended)) - Math.min(...rows.map((r) => r.created))) / 1000,
      };
    };

    progress(`latency: ${taskCount} echo tasks at ${rate} per second`);
    const paced = await phase(async (createOne) => {
      const started = performance.now();
      return await Promise.all(
        Array.from({ length: taskCount }, async (_, i) => {
          const due = started + (i * 1000) / rate;
          await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
          return await createOne(i);
        }),
      );
    });
    const pacedCreateMs = createMs.splice(0).sort((a, b) => a - b);
    progress(`throughput: ${taskCount} echo tasks, ${concurrency} creations in flight`);
    const saturated = await phase(async (createOne) => {
      const ids: string[] = [];
      await pool(Array.from({ length: taskCount }, (_, i) => taskCount + i), concurrency, async (i) => {
        ids.push(await createOne(i));
      });
      return ids;
    });
    clearInterval(sampler);
    await listener.end();

    const pollingOf = (rows: typeof paced.rows, serviceMs: number) => {
      const trustIndex = new Map([...new Set(rows.map((r) => r.trust))].map((id, i) => [id, i]));
      const out = simulatePolling(rows.map((r) => ({ trust: trustIndex.get(r.trust)!, createdAt: r.created })), { intervalMs: POLL_INTERVAL_MS, serviceMs });
      return { latencies: [...out.latenciesMs].sort((a, b) => a - b), spanS: out.spanMs / 1000 };
    };
    const polledPaced = pollingOf(paced.rows, percentile(paced.service, 50));
    const polledSaturated = pollingOf(saturated.rows, percentile(saturated.service, 50));
    const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
    const failed = paced.failed + saturated.failed;

    const result = {
      benchmark: "link",
      trusts,
      tasks: taskCount,
      failed_tasks: failed,
      rate_per_s: rate,
      dispatch_p50_ms: round(percentile(paced.latencies, 50)),
      dispatch_p90_ms: round(percentile(paced.latencies, 90)),
      dispatch_p99_ms: round(percentile(paced.latencies, 99)),
      dispatch_max_ms: round(paced.latencies[paced.latencies.length - 1]!),
      created_to_offered_p50_ms: round(percentile(paced.toOffer, 50)),
      created_to_offered_p99_ms: round(percentile(paced.toOffer, 99)),
      offered_to_recorded_p50_ms: round(percentile(paced.service, 50)),
      offered_to_recorded_p99_ms: round(percentile(paced.service, 99)),
      create_rpc_p50_ms: round(percentile(pacedCreateMs, 50)),
      create_rpc_p99_ms: round(percentile(pacedCreateMs, 99)),
      create_concurrency: concurrency,
      tasks_per_s: round(taskCount / saturated.spanS),
      saturated_dispatch_p50_ms: round(percentile(saturated.latencies, 50)),
      saturated_dispatch_p99_ms: round(percentile(saturated.latencies, 99)),
      connect_all_s: round(connectS, 2),
      hub_rss_mb: round(peakMb),
      hub_rss_idle_mb: round(idleMb),
      hub_rss_no_trusts_mb: round(baselineMb),
      // RSS grows in steps (heap pages, young-generation resizing), so both figures are only meaningful with hundreds of trusts.
      hub_kb_per_idle_trust: round(((idleMb - baselineMb) * 1024) / trusts),
      hub_kb_per_idle_trust_second_half: round(((idleMb - halfMb) * 1024) / (trusts - half)),
      link_idle_messages_per_s: round((2 * trusts) / (HEARTBEAT_INTERVAL_MS / 1000)),
      polling: {
        model: "computed from the same task creation times: 5 s poll interval, each poll's tasks run one after another at the measured offered-to-recorded p50",
        interval_ms: POLL_INTERVAL_MS,
        dispatch_p50_ms: round(percentile(polledPaced.latencies, 50)),
        dispatch_p99_ms: round(percentile(polledPaced.latencies, 99)),
        tasks_per_s: round(taskCount / polledSaturated.spanS),
        saturated_dispatch_p50_ms: round(percentile(polledSaturated.latencies, 50)),
        idle_requests_per_s: round((2 * trusts) / (POLL_INTERVAL_MS / 1000)),
      },
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? "", memory_gb: round(os.totalmem() / 2 ** 30), node: process.version },
    };
    if (values.json) process.stdout.write(JSON.stringify(result) + "\n");
    else process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return failed === 0 ? 0 : 1;
  } finally {
    for (const swarm of swarms) await swarm.close();
    hub.kill("SIGTERM");
    await hubExited;
    rmSync(path.join(root, ".tmp", `bench-hub-${process.pid}`), { recursive: true, force: true });
    const cleanup = new pg.Client({ connectionString: pgServer.adminUrl });
    await cleanup.connect();
    await cleanup.query(`drop database if exists "${dbName}" with (force)`);
    await cleanup.end();
    await pgServer.stop();
  }
}
