/**
 * `npm run bench -- link --trusts N --tasks M [--rate R] [--concurrency C] [--json]`
 *
 * Starts PostgreSQL (DATABASE_URL's server, or an embedded one), a hub process, and N simulated
 * gateways in this process (one HTTP/2 connection and stream each). Measures the hub's memory idle
 * and per linked trust, then creates echo tasks through TaskService, round-robin over the trusts, in
 * three phases of M tasks: paced at R per second (latency: created → result recorded, read back from
 * the task table), then C creations in flight at once (throughput), then in rounds of one task per
 * trust, each round one CreateEchoTasks call (batched throughput). The same creation times are fed to
 * a model of the original 5 s poller for comparison.
 */
import * as os from "node:os";
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import pg from "pg";
import { TaskService } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { startSimulatedGateways } from "@flip/trust-gateway/simulation/simulated-gateways.js";
import { rssMb, settledRssMb, startBenchHub } from "./bench-hub.js";
import { percentile, simulatePolling } from "./polling-model.js";

const POLL_INTERVAL_MS = 5_000;
const HEARTBEAT_INTERVAL_MS = 10_000;

const log = createLogger({ service: "bench", level: process.env.FLIP_LOG_LEVEL ?? "warn", destination: process.stderr });
const progress = (msg: string) => process.stderr.write(`[bench link] ${msg}\n`);

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
  }));
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

  const hub = await startBenchHub({ name: "link", log, env: { FLIP_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS) } });
  const swarms: Awaited<ReturnType<typeof startSimulatedGateways>>[] = [];
  const transport = hub.admin;
  const hubUrl = hub.url;
  try {
    progress(`hub up (pid ${hub.pid}); registering ${trusts} trusts`);
    const trustClient = createClient(TrustService, transport);
    const codes = Array.from({ length: trusts }, (_, i) => `b${String(i).padStart(5, "0")}`);
    const keys = new Map<string, string>();
    await pool(codes, 8, async (code) => {
      keys.set(code, (await trustClient.registerTrust({ name: `Bench trust ${code}`, code })).apiKey);
    });
    const baselineMb = await settledRssMb(hub.pid);

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
    const halfMb = await settledRssMb(hub.pid, 4_000);
    await link(codes.slice(half));
    const idleMb = await settledRssMb(hub.pid, 4_000);

    const listener = new pg.Client({ connectionString: hub.databaseUrl });
    await listener.connect();
    await listener.query("listen flip_task_ended");
    let peakMb = idleMb;
    const sampler = setInterval(() => (peakMb = Math.max(peakMb, rssMb(hub.pid))), 200);
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

    // Warm-up, not measured: compiled code, pooled database connections and buffers on both sides, so
    // the paced phase measures the steady state rather than the first tasks' one-off costs.
    const warmUp = Math.min(100, taskCount);
    progress(`warm-up: ${warmUp} echo tasks`);
    const warmedUp = new Promise<void>((resolve) => {
      let ended = 0;
      const onEnd = () => {
        if (++ended === warmUp) {
          listener.off("notification", onEnd);
          resolve();
        }
      };
      listener.on("notification", onEnd);
    });
    await pool(Array.from({ length: warmUp }, (_, i) => i), 4, async (i) => {
      await tasks.createEchoTask({ trust: codes[i % trusts]!, message: `warm-up ${i}` });
    });
    await warmedUp;
    createMs.length = 0;
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
    // Batched: one CreateEchoTasks call per round (a task for each trust, in one transaction with one
    // audit entry), rounds back to back, as a federated job creates them.
    const batchSize = Math.min(trusts, taskCount);
    progress(`batched: ${taskCount} echo tasks in rounds of ${batchSize}, one CreateEchoTasks call each`);
    const batchMs: number[] = [];
    const batched = await phase(async () => {
      const ids: string[] = [];
      for (let made = 0; made < taskCount; made += batchSize) {
        const n = Math.min(batchSize, taskCount - made);
        const started = performance.now();
        const res = await tasks.createEchoTasks({ trusts: codes.slice(0, n), message: `bench round ${made / batchSize}` });
        batchMs.push(performance.now() - started);
        ids.push(...res.tasks.map((x) => x.id));
      }
      return ids;
    });
    batchMs.sort((a, b) => a - b);
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
    const failed = paced.failed + saturated.failed + batched.failed;

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
      batch_size: batchSize,
      tasks_per_s_batched: round(taskCount / batched.spanS),
      batch_create_rpc_p50_ms: round(percentile(batchMs, 50)),
      batch_create_rpc_max_ms: round(batchMs[batchMs.length - 1]!),
      batched_dispatch_p50_ms: round(percentile(batched.latencies, 50)),
      batched_dispatch_p99_ms: round(percentile(batched.latencies, 99)),
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
    await hub.close();
  }
}
