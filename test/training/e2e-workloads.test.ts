import { readFile } from "node:fs/promises";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import { JobService, JobState, ModelService, ParticipantState, type Job } from "@flip/gen/flip/hub/v1/training_pb.js";
import { ensureDockerEngine, type DockerEngine } from "@flip/shared/docker/engine.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { ensureWorkloadImages, WORKLOAD_IMAGES } from "../../tools/src/images/ensure-images.js";
import { startGatewayProc, type GatewayProc } from "../support/link.js";
import { approvedProject, downloadedWeights } from "../support/training.js";
import { BOOTSTRAP_TOKEN, startTestHub, type TestHub } from "../support/test-hub.js";

/**
 * The whole path with real parts: the hub, gateway processes with training on, the reference numpy
 * image with the Python SDK running a researcher's bundled train.py in the sandbox on a real Docker
 * engine; restarts of either side under a running job.
 */
interface Ctx {
  t: TestHub;
  engine: DockerEngine;
  trusts: Record<string, { id: string; apiKey: string }>;
  gateways: Record<string, GatewayProc>;
}
const test = anyTest as TestFn<Ctx>;
const log = createLogger({ service: "test", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });

function gatewayEnv(engine: DockerEngine, extra: Record<string, string> = {}): Record<string, string> {
  return { FLIP_TRAINING: "on", DOCKER_HOST: engine.host, FLIP_TRAINING_IMAGES: "flip/*", FLIP_TRAINING_MEMORY_MIB: "512", FLIP_GATEWAY_CAPACITY: "training=8", ...extra };
}

function startGateway(ctx: Ctx, code: string, stateDir?: string, extra: Record<string, string> = {}): GatewayProc {
  return startGatewayProc({ hubUrl: ctx.t.hub.url, trustCode: code, key: ctx.trusts[code]!.apiKey, stateDir, env: gatewayEnv(ctx.engine, extra) });
}

test.before(async (t) => {
  const engine = await ensureDockerEngine({ log });
  await ensureWorkloadImages(engine, { names: ["train-numpy"], log });
  const hub = await startTestHub();
  const trusts: Ctx["trusts"] = {};
  for (const code of ["north", "south"]) trusts[code] = await hub.registerTrust(code);
  t.context = { t: hub, engine, trusts, gateways: {} };
  for (const code of ["north", "south"]) t.context.gateways[code] = startGateway(t.context, code);
  await Promise.all(Object.values(t.context.gateways).map((g) => g.proc.waitForLog("linked to the hub", { timeoutMs: 60_000 })));
});

test.after.always(async (t) => {
  await Promise.all(Object.values(t.context.gateways ?? {}).map((g) => g.proc.stop()));
  await t.context.t?.close();
});

const jobs = (ctx: Ctx) => ctx.t.client(JobService, BOOTSTRAP_TOKEN);

async function startJob(ctx: Ctx, opts: { rounds: number; pauseS: number; gpus?: number }): Promise<string> {
  const projectId = await approvedProject(ctx.t, [ctx.trusts.north!.id, ctx.trusts.south!.id]);
  const { model } = await ctx.t.client(ModelService, BOOTSTRAP_TOKEN).createModel({
    projectId,
    name: `e2e-${Math.random().toString(36).slice(2, 8)}`,
    image: WORKLOAD_IMAGES.numpy,
    files: [{ path: "train.py", content: await readFile(path.join(import.meta.dirname, "e2e-bundle", "train.py")) }],
    configJson: JSON.stringify({ pause_s: opts.pauseS }),
  });
  const { job } = await jobs(ctx).createJob({ modelId: model!.id, trusts: ["north", "south"], rounds: opts.rounds, gpusPerTrust: opts.gpus ?? 0, roundTimeoutSeconds: 300 });
  return job!.id;
}

async function ended(ctx: Ctx, jobId: string): Promise<Job> {
  return (await eventually(() => jobs(ctx).getJob({ jobId }), (r) => r.job!.state >= JobState.COMPLETED, { timeoutMs: 120_000, what: "the job to end" })).job!;
}

function finalWeights(ctx: Ctx, jobId: string): Promise<Float32Array> {
  return downloadedWeights(jobs(ctx), jobId);
}

async function containersOf(ctx: Ctx, jobId: string): Promise<number> {
  return (await ctx.engine.docker.listContainers({ all: true, filters: { label: [`flip.job=${jobId}`] } })).length;
}

function inRound(ctx: Ctx, jobId: string, round: number) {
  return eventually(() => jobs(ctx).getJob({ jobId }), (r) => r.job!.currentRound === round && r.job!.participants.every((p) => p.state === ParticipantState.TRAINING), {
    timeoutMs: 60_000,
    what: `both trusts training round ${round}`,
  });
}

/** Each round adds (100·1 + 300·3) / 400 = 2.5 to every weight. */
const expected = (rounds: number) => 2.5 * rounds;

test.serial("two trusts train three rounds in sandboxed containers; the hub averages them; containers are removed at the end", async (t) => {
  const ctx = t.context;
  const jobId = await startJob(ctx, { rounds: 3, pauseS: 0 });
  const done = await ended(ctx, jobId);
  t.is(done.state, JobState.COMPLETED, done.endReason);
  t.deepEqual(done.roundHistory.map((r) => [r.updates, Number(r.samples)]), [
    [2, 400],
    [2, 400],
    [2, 400],
  ]);
  const w = await finalWeights(ctx, jobId);
  t.true(w.every((v) => Math.abs(v - expected(3)) < 1e-5), `final weights ${w[0]}`);
  const { metrics } = await jobs(ctx).listMetrics({ jobId, label: "loss" });
  t.is(metrics.length, 6);
  await eventually(() => containersOf(ctx, jobId), (n) => n === 0, { timeoutMs: 30_000, what: "the job's containers removed" });
});

test.serial("a gateway killed mid-round comes back, finds its container and the job completes with nothing counted twice", async (t) => {
  const ctx = t.context;
  const jobId = await startJob(ctx, { rounds: 3, pauseS: 2 });
  await inRound(ctx, jobId, 2);
  const north = ctx.gateways.north!;
  await north.proc.kill();
  ctx.gateways.north = startGateway(ctx, "north", north.stateDir);
  const done = await ended(ctx, jobId);
  t.is(done.state, JobState.COMPLETED, done.endReason);
  t.deepEqual(done.roundHistory.map((r) => r.updates), [2, 2, 2]);
  t.true(done.participants.every((p) => p.updates === 3 && p.missed === 0));
  const w = await finalWeights(ctx, jobId);
  t.true(w.every((v) => Math.abs(v - expected(3)) < 1e-5), `final weights ${w[0]}`);
  await eventually(() => containersOf(ctx, jobId), (n) => n === 0, { timeoutMs: 30_000, what: "the job's containers removed" });
});

test.serial("a hub restart mid-round: the job resumes and completes with the same weights", async (t) => {
  const ctx = t.context;
  const jobId = await startJob(ctx, { rounds: 3, pauseS: 2 });
  await inRound(ctx, jobId, 2);
  await ctx.t.restart();
  const done = await ended(ctx, jobId);
  t.is(done.state, JobState.COMPLETED, done.endReason);
  t.deepEqual(done.roundHistory.map((r) => r.updates), [2, 2, 2]);
  const w = await finalWeights(ctx, jobId);
  t.true(w.every((v) => Math.abs(v - expected(3)) < 1e-5), `final weights ${w[0]}`);
});

test.serial("abort mid-round stops every container of the job within seconds", async (t) => {
  const ctx = t.context;
  const jobId = await startJob(ctx, { rounds: 5, pauseS: 30 });
  await inRound(ctx, jobId, 1);
  // A trust acknowledges a round before its container exists: wait for both containers.
  await eventually(() => containersOf(ctx, jobId), (n) => n === 2, { timeoutMs: 60_000, what: "both containers started" });
  const abortedAt = Date.now();
  const { job } = await jobs(ctx).abortJob({ jobId, reason: "stop the test" });
  t.is(job!.state, JobState.ABORTED);
  await eventually(() => containersOf(ctx, jobId), (n) => n === 0, { timeoutMs: 30_000, what: "the job's containers removed" });
  t.log(`containers gone ${Date.now() - abortedAt} ms after the abort`);
});

test.serial("a job that asks for a GPU on an engine without the NVIDIA runtime fails, saying so", async (t) => {
  const ctx = t.context;
  // North's operator declares a GPU, but its Docker engine has no NVIDIA runtime.
  const north = ctx.gateways.north!;
  await north.proc.stop();
  ctx.gateways.north = startGateway(ctx, "north", north.stateDir, { FLIP_GATEWAY_GPUS: '[{"index":0,"name":"Test GPU","memoryTotalMib":16384}]' });
  await eventually(
    () => ctx.t.hub.db.em().execute<{ health: { gpus?: unknown[] } | null }[]>("select health from trust where id = ?", [ctx.trusts.north!.id]),
    (r) => (r[0]?.health?.gpus?.length ?? 0) === 1,
    { timeoutMs: 30_000, what: "the hub seeing north's declared GPU" },
  );
  const projectId = await approvedProject(ctx.t, [ctx.trusts.north!.id]);
  const { model } = await ctx.t.client(ModelService, BOOTSTRAP_TOKEN).createModel({ projectId, name: "gpu", image: WORKLOAD_IMAGES.numpy });
  const { job } = await jobs(ctx).createJob({ modelId: model!.id, trusts: ["north"], rounds: 1, gpusPerTrust: 1, roundTimeoutSeconds: 60 });
  const done = await ended(ctx, job!.id);
  t.is(done.state, JobState.FAILED);
  t.regex(done.endReason, /north: .*no NVIDIA runtime.*1 GPU/);
  t.deepEqual(done.participants[0]!.gpuIndices, [0]);
});
