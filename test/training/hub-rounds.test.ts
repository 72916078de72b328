import anyTest, { type TestFn } from "ava";
import { Code } from "@connectrpc/connect";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { JobKind, JobService, JobState, ModelService, ParticipantState, type Job } from "@flip/gen/flip/hub/v1/training_pb.js";
import { TrainingAction } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { schedulePass } from "@flip/hub/training/scheduler.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { sampleValue, scrape } from "@flip/shared/testing/metrics-scrape.js";
import type { RunningGateway } from "@flip/trust-gateway/gateway.js";
import { simulatedTrainingHandler, type SimulatedTrainer } from "@flip/trust-gateway/simulation/simulated-training.js";
import { TaskErrorCode, TaskFailure, type TaskHandler } from "@flip/trust-gateway/tasks/task-handler.js";
import { approvedProject, downloadedWeights, startHandlerGateway } from "../support/training.js";
import { BOOTSTRAP_TOKEN, startTestHub, type TestHub } from "../support/test-hub.js";

/**
 * Rounds through the real hub, link, artifact transfers and FedAvg, with simulated workloads (a
 * function per trust instead of a container): the coordinator's behaviour, fast.
 */
interface Ctx {
  t: TestHub;
  trusts: Record<string, { id: string; apiKey: string; code: string }>;
  gateways: RunningGateway[];
  /** What each trust does in a round; tests swap it. */
  behaviour: Record<string, Partial<SimulatedTrainer> & { block?: (round: number) => boolean; gate?: (round: number) => Promise<void> | undefined }>;
}
const test = anyTest as TestFn<Ctx>;

const FLOATS = 1000;
const SAMPLES: Record<string, number> = { north: 100, south: 300, east: 100 };
const DELTA: Record<string, number> = { north: 1, south: 3, east: 2 };

test.before(async (t) => {
  const hub = await startTestHub({ FLIP_METRICS_ADDR: "127.0.0.1:0" });
  const trusts: Ctx["trusts"] = {};
  const behaviour: Ctx["behaviour"] = {};
  const gateways: RunningGateway[] = [];
  for (const code of ["north", "south", "east"]) {
    const reg = await hub.registerTrust(code);
    trusts[code] = { ...reg, code };
    behaviour[code] = {};
    // Each trust adds its delta to the global weights (zeros in round 1), unless the test says otherwise.
    const trainer: SimulatedTrainer = {
      modelFloats: FLOATS,
      samples: SAMPLES[code]!,
      train: (global, round) => {
        const custom = behaviour[code]!.train;
        if (custom) return custom(global, round);
        const out = new Float32Array(global?.length ?? FLOATS);
        for (let i = 0; i < out.length; i++) out[i] = (global?.[i] ?? 0) + DELTA[code]!;
        return out;
      },
      failRound: (round) => behaviour[code]!.failRound?.(round),
      metrics: (round) => [{ label: "loss", value: 1 / round }],
    };
    const sim = simulatedTrainingHandler({ hubUrl: hub.hub.url, trustKey: reg.apiKey, trainer });
    const handler: TaskHandler<"training"> = async (spec, ctx) => {
      if (spec.action === TrainingAction.ROUND && behaviour[code]!.block?.(spec.round)) {
        await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(new TaskFailure(TaskErrorCode.CANCELLED, "stopped"))));
      }
      if (spec.action === TrainingAction.ROUND) await behaviour[code]!.gate?.(spec.round);
      return await sim.handler(spec, ctx);
    };
    gateways.push(await startHandlerGateway(hub.hub.url, { code, apiKey: reg.apiKey }, { training: handler }));
  }
  t.context = { t: hub, trusts, gateways, behaviour };
});

test.after.always(async (t) => {
  await Promise.all(t.context.gateways?.map((g) => g.close()) ?? []);
  await t.context.t?.close();
});

const admin = (ctx: Ctx) => ({ models: ctx.t.client(ModelService, BOOTSTRAP_TOKEN), jobs: ctx.t.client(JobService, BOOTSTRAP_TOKEN) });

async function newModel(ctx: Ctx, trusts: string[]): Promise<string> {
  const projectId = await approvedProject(ctx.t, trusts.map((c) => ctx.trusts[c]!.id));
  const { model } = await admin(ctx).models.createModel({
    projectId,
    name: `m-${Math.random().toString(36).slice(2, 8)}`,
    image: "flip/train-numpy:1",
    configJson: '{"local_epochs": 1}',
    files: [{ path: "train.py", content: new TextEncoder().encode("print('hi')\n") }],
  });
  return model!.id;
}

async function ended(ctx: Ctx, jobId: string): Promise<Job> {
  return (await eventually(() => admin(ctx).jobs.getJob({ jobId }), (r) => r.job!.state >= JobState.COMPLETED, { timeoutMs: 60_000, what: "the job to end" })).job!;
}

function finalWeights(ctx: Ctx, jobId: string, round = 0): Promise<Float32Array> {
  return downloadedWeights(admin(ctx).jobs, jobId, round);
}

test.serial("two trusts train three rounds: FedAvg weighted by samples, metrics and events stored, containers told to stop", async (t) => {
  const ctx = t.context;
  const modelId = await newModel(ctx, ["north", "south"]);
  const { job } = await admin(ctx).jobs.createJob({ modelId, trusts: ["north", "south"], rounds: 3, minUpdates: 2, roundTimeoutSeconds: 60, idempotencyKey: "k-3-rounds" });
  t.is(job!.state === JobState.QUEUED || job!.state === JobState.RUNNING, true);
  const done = await ended(ctx, job!.id);
  t.is(done.state, JobState.COMPLETED, done.endReason);
  t.is(done.currentRound, 3);
  t.deepEqual(done.roundHistory.map((r) => [r.round, r.state, r.updates, Number(r.samples)]), [
    [1, "aggregated", 2, 400],
    [2, "aggregated", 2, 400],
    [3, "aggregated", 2, 400],
  ]);
  // Each round adds (100·1 + 300·3) / 400 = 2.5 to every weight.
  const w = await finalWeights(ctx, job!.id);
  t.is(w.length, FLOATS);
  t.true(w.every((v) => Math.abs(v - 7.5) < 1e-5), `final weights ${w[0]}`);
  const round1 = await finalWeights(ctx, job!.id, 1);
  t.true(round1.every((v) => Math.abs(v - 2.5) < 1e-5));
  t.true(done.participants.every((p) => p.updates === 3 && p.missed === 0 && p.state === ParticipantState.DONE));

  const { metrics } = await admin(ctx).jobs.listMetrics({ jobId: job!.id, label: "loss" });
  t.is(metrics.length, 6, "one loss per trust per round");
  t.deepEqual([...new Set(metrics.map((m) => m.attributes.trust))].sort(), ["north", "south"]);

  const kinds: number[] = [];
  for await (const item of admin(ctx).jobs.watchJob({ jobId: job!.id })) if (item.item.case === "event") kinds.push(item.item.value.kind);
  t.is(kinds.filter((k) => k === 5).length, 3, "three ROUND_AGGREGATED events");
  t.is(kinds.filter((k) => k === 4).length, 6, "six UPDATE_RECEIVED events");
  t.is(kinds.at(-1), 7, "ENDED last");

  // What an SRE scrapes: three rounds averaged (each counted just after its commit), the updates' bytes, the transfers.
  const scraped = await eventually(() => scrape(ctx.t.hub.metricsUrl!), (m) => sampleValue(m, "flip_training_round_seconds_count", { outcome: "aggregated" }) === 3, {
    what: "three aggregated rounds in /metrics",
  });
  t.is(sampleValue(scraped, "flip_aggregation_seconds_count"), 3);
  const averaged = sampleValue(scraped, "flip_aggregation_input_bytes_total")!;
  t.true(averaged > 6 * FLOATS * 4, "six updates of 1000 float32 each were averaged");
  t.true(sampleValue(scraped, "flip_artifact_bytes_total", { direction: "upload" })! >= averaged, "every update was uploaded");
  t.true(sampleValue(scraped, "flip_artifact_bytes_total", { direction: "download" })! > 0, "global weights went to the trusts and to this test");

  // Every trust got a STOP for the ended job, and answered it.
  await eventually(
    () => ctx.t.hub.db.em().execute<{ n: number }[]>("select count(*)::int as n from job_task jt join task t on t.id = jt.task_id where jt.job_id = ? and jt.action = 'stop' and t.state = 'succeeded'", [job!.id]),
    (r) => r[0]!.n === 2,
    { what: "both STOP tasks answered" },
  );
  // The retried create (the same request, the same key) returns the same job; the key with another request is refused.
  const again = await admin(ctx).jobs.createJob({ modelId, trusts: ["north", "south"], rounds: 3, minUpdates: 2, roundTimeoutSeconds: 60, idempotencyKey: "k-3-rounds" });
  t.is(again.job!.id, job!.id);
  const reused = await connectErrorOf(admin(ctx).jobs.createJob({ modelId, trusts: ["north", "south"], rounds: 2, minUpdates: 2, idempotencyKey: "k-3-rounds" }));
  t.is(reused.code, Code.AlreadyExists, reused.message);
});

test.serial("k of n: a trust that fails a round is recorded as missing it and the round goes on with enough updates", async (t) => {
  const ctx = t.context;
  ctx.behaviour.east!.failRound = (round) => (round === 2 ? "workload exited with code 1 in round 2" : undefined);
  try {
    const modelId = await newModel(ctx, ["north", "east"]);
    const { job } = await admin(ctx).jobs.createJob({ modelId, trusts: ["north", "east"], rounds: 3, minUpdates: 1, roundTimeoutSeconds: 60 });
    const done = await ended(ctx, job!.id);
    t.is(done.state, JobState.COMPLETED, done.endReason);
    const east = done.participants.find((p) => p.trustCode === "east")!;
    t.is(east.missed, 1);
    t.is(east.updates, 2);
    t.regex(east.lastMissReason, /exited with code 1 in round 2/);
    t.deepEqual(done.roundHistory.map((r) => r.updates), [2, 1, 2]);
    // Round 1: (1+2)/2 = 1.5; round 2 from north only: 2.5; round 3: 2.5 + 1.5 = 4.
    const w = await finalWeights(ctx, job!.id);
    t.true(w.every((v) => Math.abs(v - 4) < 1e-5), `final weights ${w[0]}`);
  } finally {
    ctx.behaviour.east!.failRound = undefined;
  }
});

test.serial("a trust that misses the round's deadline is recorded as missing it and the round goes on without it", async (t) => {
  const ctx = t.context;
  ctx.behaviour.south!.block = (round) => round === 1;
  try {
    const modelId = await newModel(ctx, ["north", "south"]);
    const { job } = await admin(ctx).jobs.createJob({ modelId, trusts: ["north", "south"], rounds: 2, minUpdates: 1, roundTimeoutSeconds: 10 });
    const done = await ended(ctx, job!.id);
    t.is(done.state, JobState.COMPLETED, done.endReason);
    t.deepEqual(done.roundHistory.map((r) => [r.updates, r.missed]), [
      [1, 1],
      [2, 0],
    ]);
    const south = done.participants.find((p) => p.trustCode === "south")!;
    t.is(south.missed, 1);
    t.regex(south.lastMissReason, /deadline/);
    // Round 1 from north alone: 1; round 2: 1 + (100·1 + 300·3) / 400 = 3.5.
    const w = await finalWeights(ctx, job!.id);
    t.true(w.every((v) => Math.abs(v - 3.5) < 1e-5), `final weights ${w[0]}`);
  } finally {
    ctx.behaviour.south!.block = undefined;
  }
});

test.serial("too few updates fail the job with a reason that names the trust and its error", async (t) => {
  const ctx = t.context;
  ctx.behaviour.east!.failRound = () => "out of memory";
  try {
    const modelId = await newModel(ctx, ["north", "east"]);
    const { job } = await admin(ctx).jobs.createJob({ modelId, trusts: ["north", "east"], rounds: 2, roundTimeoutSeconds: 60 });
    const done = await ended(ctx, job!.id);
    t.is(done.state, JobState.FAILED);
    t.regex(done.endReason, /round 1: 1 of 2 needed updates arrived \(east: out of memory\)/);
    const failedRounds = async () => sampleValue(await scrape(ctx.t.hub.metricsUrl!), "flip_training_round_seconds_count", { outcome: "failed" });
    t.is(await eventually(failedRounds, (n) => n === 1, { what: "the failed round in /metrics" }), 1);
  } finally {
    ctx.behaviour.east!.failRound = undefined;
  }
});

test.serial("abort mid-round ends the job, cancels the round's tasks and tells the trusts to stop", async (t) => {
  const ctx = t.context;
  ctx.behaviour.south!.block = (round) => round === 2;
  try {
    const modelId = await newModel(ctx, ["north", "south"]);
    const { job } = await admin(ctx).jobs.createJob({ modelId, trusts: ["north", "south"], rounds: 3, roundTimeoutSeconds: 60 });
    await eventually(() => admin(ctx).jobs.getJob({ jobId: job!.id }), (r) => r.job!.currentRound === 2 && r.job!.participants.some((p) => p.trustCode === "south" && p.state === ParticipantState.TRAINING), {
      what: "south training round 2",
    });
    const { job: aborted } = await admin(ctx).jobs.abortJob({ jobId: job!.id, reason: "wrong learning rate" });
    t.is(aborted!.state, JobState.ABORTED);
    t.regex(aborted!.endReason, /wrong learning rate/);
    const open = await ctx.t.hub.db.em().execute<{ n: number }[]>(
      "select count(*)::int as n from job_task jt join task t on t.id = jt.task_id where jt.job_id = ? and jt.action = 'round' and t.state in ('pending', 'offered', 'running')",
      [job!.id],
    );
    t.is(open[0]!.n, 0, "no round task left open");
    await eventually(
      () => ctx.t.hub.db.em().execute<{ n: number }[]>("select count(*)::int as n from job_task jt join task t on t.id = jt.task_id where jt.job_id = ? and jt.action = 'stop' and t.state = 'succeeded'", [job!.id]),
      (r) => r[0]!.n === 2,
      { what: "both STOP tasks answered" },
    ).catch(async (e) => {
      console.log(await ctx.t.hub.db.em().execute("select jt.action, jt.round, t.state, t.attempt, t.end_reason from job_task jt join task t on t.id = jt.task_id where jt.job_id = ?", [job!.id]));
      throw e;
    });
    // Aborting again is a no-op.
    t.is((await admin(ctx).jobs.abortJob({ jobId: job!.id })).job!.state, JobState.ABORTED);
  } finally {
    ctx.behaviour.south!.block = undefined;
  }
});

test.serial("deleting a model or a project aborts its live job, naming the deletion, and tells the trusts to stop", async (t) => {
  const ctx = t.context;
  ctx.behaviour.north!.block = (round) => round === 1;
  try {
    const deletedModel = await newModel(ctx, ["north"]);
    const { job: first } = await admin(ctx).jobs.createJob({ modelId: deletedModel, trusts: ["north"], rounds: 2, roundTimeoutSeconds: 60 });
    await admin(ctx).models.deleteModel({ modelId: deletedModel });
    const { job: firstEnded } = await admin(ctx).jobs.getJob({ jobId: first!.id });
    t.is(firstEnded!.state, JobState.ABORTED);
    t.regex(firstEnded!.endReason, /model "m-.+" was deleted by bootstrap-admin/);

    const modelId = await newModel(ctx, ["north"]);
    const { model } = await admin(ctx).models.getModel({ modelId });
    const { job } = await admin(ctx).jobs.createJob({ modelId, trusts: ["north"], rounds: 2, roundTimeoutSeconds: 60 });
    await eventually(() => admin(ctx).jobs.getJob({ jobId: job!.id }), (r) => r.job!.participants.some((p) => p.state === ParticipantState.TRAINING), { what: "north training round 1" });
    await ctx.t.client(ProjectService, BOOTSTRAP_TOKEN).deleteProject({ projectId: model!.projectId });
    const [row] = await ctx.t.hub.db.em().execute<{ state: string; end_reason: string }[]>("select state, end_reason from job where id = ?", [job!.id]);
    t.is(row!.state, "aborted", "ended in the deletion's own transaction");
    t.regex(row!.end_reason, /project ".+" was deleted by bootstrap-admin/);
    await eventually(
      () => ctx.t.hub.db.em().execute<{ n: number }[]>("select count(*)::int as n from job_task jt join task t on t.id = jt.task_id where jt.job_id = ? and jt.action = 'stop' and t.state = 'succeeded'", [job!.id]),
      (r) => r[0]!.n === 1,
      { what: "north's STOP task answered" },
    );
  } finally {
    ctx.behaviour.north!.block = undefined;
  }
});

test.serial("a hub restart mid-round loses and doubles nothing: the job resumes and completes with the same weights", async (t) => {
  const ctx = t.context;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  ctx.behaviour.south!.gate = (round) => (round === 2 ? gate : undefined);
  try {
    const modelId = await newModel(ctx, ["north", "south"]);
    const { job } = await admin(ctx).jobs.createJob({ modelId, trusts: ["north", "south"], rounds: 3, roundTimeoutSeconds: 120 });
    await eventually(() => admin(ctx).jobs.getJob({ jobId: job!.id }), (r) => r.job!.currentRound === 2 && r.job!.participants.some((p) => p.trustCode === "north" && p.state === ParticipantState.UPDATE_RECEIVED), {
      what: "north's round 2 update while south still trains",
    });
    await ctx.t.restart();
    release();
    const done = await ended(ctx, job!.id);
    t.is(done.state, JobState.COMPLETED, done.endReason);
    t.deepEqual(done.roundHistory.map((r) => r.updates), [2, 2, 2]);
    t.true(done.participants.every((p) => p.updates === 3 && p.missed === 0));
    const w = await finalWeights(ctx, job!.id);
    t.true(w.every((v) => Math.abs(v - 7.5) < 1e-5), `final weights ${w[0]}`);
  } finally {
    ctx.behaviour.south!.gate = undefined;
    release();
  }
});

test.serial("a job is refused, naming the trust, when a trust has not approved or has too few GPUs; one live job per model", async (t) => {
  const ctx = t.context;
  const modelId = await newModel(ctx, ["north"]);
  const notApproved = await connectErrorOf(admin(ctx).jobs.createJob({ modelId, trusts: ["north", "south"] }));
  t.is(notApproved.code, Code.FailedPrecondition);
  t.regex(notApproved.rawMessage, /trust "south" was never asked to approve this project/);
  const gpus = await connectErrorOf(admin(ctx).jobs.createJob({ modelId, trusts: ["north"], gpusPerTrust: 1 }));
  t.is(gpus.code, Code.FailedPrecondition);
  t.regex(gpus.rawMessage, /trust "north" advertises 0 GPUs; this job asks for 1/);
  const unknown = await connectErrorOf(admin(ctx).jobs.createJob({ modelId, trusts: ["nowhere"] }));
  t.is(unknown.code, Code.NotFound);
  const badMin = await connectErrorOf(admin(ctx).jobs.createJob({ modelId, trusts: ["north"], minUpdates: 2 }));
  t.is(badMin.code, Code.InvalidArgument);
  const evalRounds = await connectErrorOf(admin(ctx).jobs.createJob({ modelId, trusts: ["north"], kind: JobKind.EVALUATE, rounds: 3 }));
  t.is(evalRounds.code, Code.InvalidArgument);

  ctx.behaviour.north!.block = () => true;
  try {
    const { job } = await admin(ctx).jobs.createJob({ modelId, trusts: ["north"], rounds: 1, roundTimeoutSeconds: 60 });
    const second = await connectErrorOf(admin(ctx).jobs.createJob({ modelId, trusts: ["north"] }));
    t.is(second.code, Code.FailedPrecondition);
    t.regex(second.rawMessage, /already has a (queued|running) job/);
    await admin(ctx).jobs.abortJob({ jobId: job!.id });
  } finally {
    ctx.behaviour.north!.block = undefined;
  }
});

test.serial("jobs wait FIFO for GPUs with a visible queue position, get specific GPUs, and deployment mode pauses pick-up", async (t) => {
  const ctx = t.context;
  // A trust whose gateway advertised two GPUs and is offline now (no gateway here): its GPUs still count.
  const west = await ctx.t.registerTrust("west");
  await ctx.t.hub.db.em().execute("update trust set health = ?::jsonb where id = ?", [JSON.stringify({ gpus: [{ index: 0, name: "A" }, { index: 1, name: "B" }], gpuSource: "GPU_SOURCE_DECLARED" }), west.id]);
  const projectId = await approvedProject(ctx.t, [west.id]);
  const models = admin(ctx).models;
  const model = async (name: string) => (await models.createModel({ projectId, name, image: "flip/train-numpy:1" })).model!.id;
  const start = async (name: string, gpus: number) => (await admin(ctx).jobs.createJob({ modelId: await model(name), trusts: ["west"], gpusPerTrust: gpus, rounds: 1, roundTimeoutSeconds: 600 })).job!.id;
  const job = async (id: string) => (await admin(ctx).jobs.getJob({ jobId: id })).job!;
  const running = (id: string) => eventually(() => job(id), (j) => j.state === JobState.RUNNING, { what: `job ${id} running` });

  const big = await start("big", 2);
  t.deepEqual((await running(big)).participants[0]!.gpuIndices, [0, 1]);
  const next = await start("next", 1);
  const after = await start("after", 1);
  const cpu = await start("cpu", 0);
  t.is((await running(cpu)).participants[0]!.gpuIndices.length, 0, "a CPU job needs no GPU and does not wait");
  t.is((await job(next)).queuePosition, 1);
  t.is((await job(after)).queuePosition, 2);

  const adminClient = ctx.t.client(AdminService, BOOTSTRAP_TOKEN);
  await adminClient.setDeploymentMode({ enabled: true });
  try {
    await admin(ctx).jobs.abortJob({ jobId: big });
    // Capacity is free, but deployment mode holds the queue: a scheduling pass (as the abort's wake-up
    // and the sweep run it) starts nothing.
    t.deepEqual(await schedulePass(ctx.t.hub.db.em()), []);
    t.is((await job(next)).state, JobState.QUEUED, "deployment mode pauses pick-up");
  } finally {
    await adminClient.setDeploymentMode({ enabled: false });
  }
  const [a, b] = await Promise.all([running(next), running(after)]);
  t.deepEqual([...a.participants[0]!.gpuIndices, ...b.participants[0]!.gpuIndices].sort(), [0, 1], "each gets its own GPU");
  for (const id of [next, after, cpu]) await admin(ctx).jobs.abortJob({ jobId: id });
});

test.serial("bad model input gets a clear error", async (t) => {
  const ctx = t.context;
  const projectId = await approvedProject(ctx.t, [ctx.trusts.north!.id]);
  const models = admin(ctx).models;
  const cases: [Record<string, unknown>, Code, RegExp][] = [
    [{ image: "" }, Code.InvalidArgument, /image/],
    [{ image: "Not An Image" }, Code.InvalidArgument, /not an image reference/],
    [{ configJson: "{oops" }, Code.InvalidArgument, /config_json: is not valid JSON/],
    [{ configJson: "[1]" }, Code.InvalidArgument, /must be a JSON object/],
    [{ files: [{ path: "../etc/passwd", content: new Uint8Array(1) }] }, Code.InvalidArgument, /'\.\.'/],
    [{ files: [{ path: "/abs", content: new Uint8Array(1) }] }, Code.InvalidArgument, /relative path/],
    [{ initialWeights: new Uint8Array([1, 2, 3]) }, Code.InvalidArgument, /initial_weights: is not a safetensors file/],
  ];
  for (const [patch, code, message] of cases) {
    const err = await connectErrorOf(models.createModel({ projectId, name: `bad-${Math.random()}`, image: "flip/train-numpy:1", ...patch }));
    t.is(err.code, code, JSON.stringify(Object.keys(patch)));
    t.regex(err.rawMessage, message);
  }
  const { model } = await models.createModel({ projectId, name: "same", image: "flip/train-numpy:1", idempotencyKey: "m-key" });
  t.is((await models.createModel({ projectId, name: "same", image: "flip/train-numpy:1", idempotencyKey: "m-key" })).model!.id, model!.id, "a retry returns the first model");
  t.is((await connectErrorOf(models.createModel({ projectId, name: "same", image: "flip/train-numpy:1" }))).code, Code.AlreadyExists);
});
