/**
 * `npm run bench -- rounds [--trusts 2,10,50] [--rounds 10] [--big] [--json]`
 *
 * Federated rounds through the real hub (a process), link, artifact transfers and FedAvg, with
 * simulated trusts in this process (a function instead of a container: each downloads the round's
 * global weights, adds one, uploads its update). A round's time is from its start to the next round's
 * start (the last: to the job's end): task creation, dispatch, download, upload, result, aggregation.
 * Per trust count: a tiny model (1,000 floats); with --big also a 100 MB model (25M floats) at 10 trusts.
 */
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import pg from "pg";
import { JobService, JobState, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { startSimulatedGateways } from "@flip/trust-gateway/simulation/simulated-gateways.js";
import { simulatedTrainingHandler } from "@flip/trust-gateway/simulation/simulated-training.js";
import { rssMb, startBenchHub, type BenchHub } from "./bench-hub.js";
import { percentile } from "./polling-model.js";

const log = createLogger({ service: "bench", level: process.env.FLIP_LOG_LEVEL ?? "warn", destination: process.stderr });
const progress = (msg: string) => process.stderr.write(`[bench rounds] ${msg}\n`);

/** Flower 1.6 on this machine kind (training-stack.md): round time at 2/10/50 clients, 1,000 floats; 100 MB at 10. */
const FLOWER_MS: Record<string, number> = { "2:tiny": 4, "10:tiny": 14, "50:tiny": 65, "10:big": 16_800, "2:big": 3_600 };

interface Result {
  benchmark: "rounds";
  trusts: number;
  model_mb: number;
  rounds: number;
  round_ms_p50: number;
  round_ms_p99: number;
  round_ms_max: number;
  hub_peak_rss_mb: number;
  flower_round_ms: number | null;
  target_round_ms: number;
}

async function measure(hub: BenchHub, trusts: number, floats: number, rounds: number): Promise<Result> {
  const trustClient = createClient(TrustService, hub.admin);
  const tag = Math.random().toString(36).slice(2, 7);
  const codes = Array.from({ length: trusts }, (_, i) => `r${tag}${i}`);
  const keys = new Map<string, string>();
  for (const code of codes) keys.set(code, (await trustClient.registerTrust({ name: `Rounds ${code}`, code })).apiKey);
  const db = new pg.Client({ connectionString: hub.databaseUrl });
  await db.connect();
  const swarm = await startSimulatedGateways({
    hubUrl: hub.url,
    trusts: codes.map((code) => ({ code, key: keys.get(code)! })),
    log,
    capacity: new Map([["training", 2]]),
    handlers: (t) => ({ training: simulatedTrainingHandler({ hubUrl: hub.url, trustKey: t.key, trainer: { modelFloats: floats, samples: 100 } }).handler }),
  });
  try {
    const { project } = await createClient(ProjectService, hub.admin).createProject({ name: `rounds ${tag}`, description: "bench" });
    await db.query("update project set status = 'approved' where id = $1", [project!.id]);
    await db.query(
      `insert into project_trust (project_id, trust_id, state, freeze_state, frozen_person_count, staged_at)
       select $1, id, 'approved', 'frozen', 100, now() from trust where code = any($2::text[])`,
      [project!.id, codes],
    );
    const { model } = await createClient(ModelService, hub.admin).createModel({ projectId: project!.id, name: `bench-${tag}`, image: "flip/train-numpy:1" });
    const jobs = createClient(JobService, hub.admin);
    const { job } = await jobs.createJob({ modelId: model!.id, trusts: codes, rounds, roundTimeoutSeconds: 600 });
    let peak = 0;
    for (;;) {
      peak = Math.max(peak, rssMb(hub.pid));
      const { job: now } = await jobs.getJob({ jobId: job!.id });
      if (now!.state >= JobState.COMPLETED) {
        if (now!.state !== JobState.COMPLETED) throw new Error(`the job ended ${JobState[now!.state]}: ${now!.endReason}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const { rows } = await db.query<{ round: number; started: Date; next: Date }>(
      `select r.round, r.started_at as started, coalesce(lead(r.started_at) over (order by r.round), j.ended_at) as next
       from job_round r join job j on j.id = r.job_id where r.job_id = $1 order by r.round`,
      [job!.id],
    );
    const ms = rows.map((r) => r.next.getTime() - r.started.getTime()).sort((a, b) => a - b);
    const big = floats > 1_000_000;
    const key = `${trusts}:${big ? "big" : "tiny"}`;
    return {
      benchmark: "rounds",
      trusts,
      model_mb: Number(((floats * 4) / 1e6).toFixed(3)),
      rounds,
      round_ms_p50: percentile(ms, 50),
      round_ms_p99: percentile(ms, 99),
      round_ms_max: ms.at(-1)!,
      hub_peak_rss_mb: Math.round(peak),
      flower_round_ms: FLOWER_MS[key] ?? null,
      target_round_ms: big ? 1_500 : (FLOWER_MS[key] ?? 0),
    };
  } finally {
    await swarm.close();
    await db.end();
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { trusts: { type: "string", default: "2,10,50" }, rounds: { type: "string", default: "10" }, big: { type: "boolean", default: false }, json: { type: "boolean", default: false } },
  });
  const counts = values.trusts.split(",").map(Number);
  const rounds = Number(values.rounds);
  if (!counts.every((n) => Number.isInteger(n) && n > 0 && n <= 200) || !Number.isInteger(rounds) || rounds < 2) {
    process.stderr.write("usage: npm run bench -- rounds [--trusts 2,10,50] [--rounds 10] [--big] [--json]\n");
    return 2;
  }
  const hub = await startBenchHub({ name: "rounds", log });
  const results: Result[] = [];
  try {
    const configs: [number, number, number][] = counts.map((n) => [n, 1_000, rounds]);
    if (values.big) configs.push([10, 25_000_000, 3]);
    for (const [n, floats, r] of configs) {
      progress(`${n} trusts, ${((floats * 4) / 1e6).toFixed(3)} MB model, ${r} rounds`);
      const result = await measure(hub, n, floats, r);
      results.push(result);
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    }
  } finally {
    await hub.close();
  }
  if (!values.json) {
    process.stdout.write("trusts  model MB  rounds  round p50 ms  p99 ms  Flower ms  hub peak RSS MB\n");
    for (const r of results) {
      process.stdout.write(
        `${String(r.trusts).padStart(6)}  ${String(r.model_mb).padStart(8)}  ${String(r.rounds).padStart(6)}  ${String(r.round_ms_p50).padStart(12)}  ${String(r.round_ms_p99).padStart(6)}  ${String(r.flower_round_ms ?? "-").padStart(9)}  ${String(r.hub_peak_rss_mb).padStart(15)}\n`,
      );
    }
  }
  return 0;
}
