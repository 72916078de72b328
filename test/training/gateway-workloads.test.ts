import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import { TrainingAction } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { ensureDockerEngine, type DockerEngine } from "@flip/shared/docker/engine.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { TaskErrorCode, TaskFailure } from "@flip/trust-gateway/tasks/task-handler.js";
import type { TaskLogEntry } from "@flip/trust-gateway/tasks/task-log.js";
import { WorkloadEngine } from "@flip/trust-gateway/training/containers.js";
import { readTrainingPolicy, type TrainingPolicy } from "@flip/trust-gateway/training/policy.js";
import { TrainingWorkloads } from "@flip/trust-gateway/training/workloads.js";
import { JobWorkspace } from "@flip/trust-gateway/training/workspace.js";
import { ensureTestImage, jobContainers, LocalArtifacts, readWeights, taskContext, trainingSpec, weights, workloadBundle } from "./gateway-fixtures.js";

/**
 * The gateway's training side against a real Docker engine: the handler and runtime API driven
 * directly (no hub), the test workload a Python script in a real locked-down container.
 */
interface Ctx {
  engine: DockerEngine;
  artifacts: LocalArtifacts;
  bundleId: string;
  /** A gateway's training side on a state directory (a second one on the same directory is a restarted gateway). */
  workloads(opts?: { dir?: string; policy?: Partial<TrainingPolicy>; taskLog?: Omit<TaskLogEntry, "at">[] }): Promise<{ w: TrainingWorkloads; dir: string; taskLog: Omit<TaskLogEntry, "at">[] }>;
  /** Every gateway's training side made, closed (and its containers removed) after the tests. */
  made: { w: TrainingWorkloads; engine: WorkloadEngine }[];
}
const test = anyTest as TestFn<Ctx>;
const log = createLogger({ service: "test", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });

test.before(async (t) => {
  const engine = await ensureDockerEngine({ log });
  await ensureTestImage(engine, log);
  const artifacts = await LocalArtifacts.create();
  const bundleId = randomUUID();
  await artifacts.put(bundleId, await workloadBundle());
  const made: Ctx["made"] = [];
  t.context = {
    engine,
    artifacts,
    bundleId,
    made,
    async workloads(opts = {}) {
      const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), "flip-gw-training-")));
      const taskLog = opts.taskLog ?? [];
      const workloadEngine = new WorkloadEngine(engine.docker, "north", dir, log);
      const w = new TrainingWorkloads({
        engine: workloadEngine,
        trustCode: "north",
        dir,
        policy: { ...readTrainingPolicy({ FLIP_TRAINING_IMAGES: "flip-test/*", FLIP_TRAINING_MEMORY_MIB: "512", FLIP_TRAINING_FORWARD_LOGS: "on" }), ...opts.policy },
        transfers: artifacts,
        taskLog: { append: (e) => taskLog.push(e) },
        log,
        stopGraceMs: 1_000,
      });
      await w.start();
      made.push({ w, engine: workloadEngine });
      return { w, dir, taskLog };
    },
  };
});

test.after.always(async (t) => {
  for (const { w, engine } of t.context.made ?? []) {
    await w.close();
    // Whatever a failed test left behind.
    for (const c of await engine.managed()) await engine.stopAndRemove(c.id, 0);
  }
});

test("rounds train in one container kept across rounds; updates are returned and STOP removes it within seconds", async (t) => {
  const { w, dir, taskLog } = await t.context.workloads();
  const jobId = randomUUID();
  const spec = { jobId, bundleArtifactId: t.context.bundleId, rounds: 2 };
  const ctx1 = taskContext(log);
  const r1 = await w.handler(trainingSpec({ ...spec, round: 1 }), ctx1);
  t.like(r1, { round: 1, samples: 10n, roundsCompleted: 1 });
  t.deepEqual(readWeights(await t.context.artifacts.uploaded(r1.updateArtifactId!)), [1, 1, 1, 1]);
  t.is(t.context.artifacts.uploads.get(r1.updateArtifactId!)!.taskId, ctx1.taskId);
  const report1 = r1.report!;
  t.deepEqual(report1.metrics!.map((m) => [m.label, m.value, m.round]), [["loss", 1, 1]]);
  t.true(report1.events!.some((e) => e.kind === "container_started"));
  const [container] = await jobContainers(t.context.engine.docker, jobId);
  t.is(container!.State, "running");

  const globalId = randomUUID();
  await t.context.artifacts.put(globalId, weights([5, 6, 7, 8]));
  const r2 = await w.handler(trainingSpec({ ...spec, round: 2, globalWeightsArtifactId: globalId }), taskContext(log));
  t.like(r2, { round: 2, samples: 10n, roundsCompleted: 2 });
  t.deepEqual(readWeights(await t.context.artifacts.uploaded(r2.updateArtifactId!)), [6, 7, 8, 9]);
  t.not(r2.updateArtifactId, r1.updateArtifactId);
  t.deepEqual(r2.report!.metrics!.map((m) => [m.label, m.round]), [["loss", 2]]);
  t.deepEqual((await jobContainers(t.context.engine.docker, jobId)).map((c) => c.Id), [container!.Id], "the same container trained both rounds");

  const stopped = Date.now();
  const out = await w.handler(trainingSpec({ jobId, action: TrainingAction.STOP, round: 0, stopReason: "completed" }), taskContext(log));
  t.true(Date.now() - stopped < 15_000, `STOP took ${Date.now() - stopped} ms`);
  t.like(out, { round: 0, roundsCompleted: 2 });
  // Output reaches reports as the engine streams it: each line once, in the round's report or a later one.
  const forwarded = [r1, r2, out].flatMap((r) => r.report!.logs!.flatMap((l) => l.lines!));
  t.true(forwarded.some((line) => line.includes("round 1: training from")));
  t.is(forwarded.filter((line) => line.includes("round 2: pushed")).length, 1);
  t.deepEqual(await jobContainers(t.context.engine.docker, jobId), []);
  t.false(existsSync(path.join(dir, jobId)));
  const lines = taskLog.filter((e) => e.event === "workload_output").flatMap((e) => e.lines ?? []);
  t.true(lines.includes("job done"), "the workload saw the end of the job and exited by itself");
  t.true(lines.some((l) => l.includes("the job ended at the hub: completed")));
});

test("the sandbox holds from inside the container: only lo, a read-only root, no capabilities, nobody", async (t) => {
  const { w } = await t.context.workloads();
  const jobId = randomUUID();
  const r = await w.handler(trainingSpec({ jobId, bundleArtifactId: t.context.bundleId, round: 1, configJson: JSON.stringify({ sandbox: true }) }), taskContext(log));
  const facts = r.report!.events!.find((e) => e.kind === "sandbox")!.details!;
  t.is(facts.interfaces, "lo");
  t.is(facts.root_write, "EROFS");
  t.is(facts.scratch_write, "ok");
  t.is(facts.CapEff, "0000000000000000");
  t.is(facts.CapPrm, "0000000000000000");
  t.is(facts.CapBnd, "0000000000000000");
  t.is(facts.NoNewPrivs, "1");
  t.is(facts.uid, "65534");
  t.not(facts.tcp, "connected");
  const [c] = await jobContainers(t.context.engine.docker, jobId);
  const info = await t.context.engine.docker.getContainer(c!.Id).inspect();
  t.like(info.HostConfig, { NetworkMode: "none", ReadonlyRootfs: true, Memory: 512 * 1024 * 1024, MemorySwap: 512 * 1024 * 1024, PidsLimit: 256, Init: true });
  await w.handler(trainingSpec({ jobId, action: TrainingAction.STOP }), taskContext(log));
});

test("a GPU job on an engine without the NVIDIA runtime fails with a message that says what to do", async (t) => {
  if (await t.context.engine.hasNvidiaRuntime()) {
    t.pass("this engine has the NVIDIA runtime");
    return;
  }
  const { w } = await t.context.workloads();
  const jobId = randomUUID();
  const err = await t.throwsAsync(w.handler(trainingSpec({ jobId, bundleArtifactId: t.context.bundleId, round: 1, gpus: 1, gpuIndices: [0] }), taskContext(log)), { instanceOf: TaskFailure });
  t.is(err.code, TaskErrorCode.UNSUPPORTED);
  t.is(err.message, "trust north: the Docker engine has no NVIDIA runtime, and this job asks for 1 GPU; install the NVIDIA Container Toolkit, or start the job with --gpus 0");
  t.deepEqual(await jobContainers(t.context.engine.docker, jobId), []);
});

test("the trust's policy refuses images it does not allow and GPUs beyond its limit; a missing image is named", async (t) => {
  const { w } = await t.context.workloads({ policy: { maxGpus: 0 } });
  const denied = await t.throwsAsync(w.handler(trainingSpec({ jobId: randomUUID(), round: 1, image: "evil/miner:1" }), taskContext(log)), { instanceOf: TaskFailure });
  t.is(denied.code, TaskErrorCode.DENIED);
  t.is(denied.message, "trust north does not allow the image evil/miner:1: its FLIP_TRAINING_IMAGES allows flip-test/*");
  const gpus = await t.throwsAsync(w.handler(trainingSpec({ jobId: randomUUID(), round: 1, gpus: 2 }), taskContext(log)), { instanceOf: TaskFailure });
  t.is(gpus.code, TaskErrorCode.DENIED);
  t.regex(gpus.message, /at most 0 GPUs per job \(FLIP_TRAINING_MAX_GPUS\), and this job asks for 2/);
  const missing = await t.throwsAsync(w.handler(trainingSpec({ jobId: randomUUID(), round: 1, image: "flip-test/absent:9" }), taskContext(log)), { instanceOf: TaskFailure });
  t.is(missing.code, TaskErrorCode.INVALID);
  t.regex(missing.message, /trust north has no image flip-test\/absent:9 on its Docker engine/);
});

test("a workload that crashes fails its round with its exit code; the next round starts a new container", async (t) => {
  const { w } = await t.context.workloads();
  const jobId = randomUUID();
  const spec = { jobId, bundleArtifactId: t.context.bundleId, configJson: JSON.stringify({ exit_in_round: 1, exit_code: 3 }) };
  const err = await t.throwsAsync(w.handler(trainingSpec({ ...spec, round: 1 }), taskContext(log)), { instanceOf: TaskFailure });
  t.is(err.code, TaskErrorCode.INVALID);
  t.regex(err.message, /^trust north: the workload exited with code 3 in round 1; its last output: .*round 1: failing on purpose/);
  const [first] = await jobContainers(t.context.engine.docker, jobId);
  t.is(first!.State, "exited");
  // The workload fails in round 1 only; round 2 runs in a fresh container.
  const r2 = await w.handler(trainingSpec({ ...spec, round: 2 }), taskContext(log));
  t.is(r2.round, 2);
  const now = await jobContainers(t.context.engine.docker, jobId);
  t.is(now.length, 1);
  t.not(now[0]!.Id, first!.Id);
  await w.handler(trainingSpec({ jobId, action: TrainingAction.STOP }), taskContext(log));
});

test("without the policy's consent, a crash message carries no workload output", async (t) => {
  const { w } = await t.context.workloads({ policy: { forwardLogs: false } });
  const jobId = randomUUID();
  const err = await t.throwsAsync(w.handler(trainingSpec({ jobId, bundleArtifactId: t.context.bundleId, round: 1, configJson: JSON.stringify({ exit_in_round: 1 }) }), taskContext(log)), {
    instanceOf: TaskFailure,
  });
  t.is(err.message, "trust north: the workload exited with code 1 in round 1; its output is in the trust's task log");
  await w.handler(trainingSpec({ jobId, action: TrainingAction.STOP }), taskContext(log));
});

test("a cancelled round leaves the container running; STOP ends even a hung workload within seconds", async (t) => {
  const { w } = await t.context.workloads();
  const jobId = randomUUID();
  const ctx = taskContext(log);
  const round = w.handler(trainingSpec({ jobId, bundleArtifactId: t.context.bundleId, round: 1, configJson: JSON.stringify({ hang: true }) }), ctx);
  await eventually(() => w.openJobState(jobId)?.container, Boolean, { timeoutMs: 60_000, what: "the container started" });
  ctx.abort.abort(new Error("round deadline passed"));
  await t.throwsAsync(round, { message: "round deadline passed" });
  const [c] = await jobContainers(t.context.engine.docker, jobId);
  t.is(c!.State, "running");
  const started = Date.now();
  await w.handler(trainingSpec({ jobId, action: TrainingAction.STOP, stopReason: "aborted" }), taskContext(log));
  t.true(Date.now() - started < 10_000, `STOP took ${Date.now() - started} ms`);
  t.deepEqual(await jobContainers(t.context.engine.docker, jobId), []);
});

test("a restarted gateway reattaches to the running container, whose runtime calls reach the new socket server", async (t) => {
  const first = await t.context.workloads();
  const jobId = randomUUID();
  const spec = trainingSpec({ jobId, bundleArtifactId: t.context.bundleId, round: 1, configJson: JSON.stringify({ wait_for: "go" }) });
  const ctx = taskContext(log);
  const round = first.w.handler(spec, ctx);
  await eventually(() => first.taskLog.some((e) => e.lines?.some((l) => l.includes("waiting for go"))), Boolean, { timeoutMs: 60_000, what: "the workload waiting" });
  const [before] = await jobContainers(t.context.engine.docker, jobId);
  // The gateway goes away mid-round (its tasks are abandoned), and a new one starts on the same state.
  ctx.abort.abort(new Error("the gateway is stopping"));
  await t.throwsAsync(round);
  await first.w.close();
  const second = await t.context.workloads({ dir: first.dir });
  t.truthy(second.w.openJobState(jobId), "the job was reopened from its workspace");
  // The workload pushes to the new server before the hub offers the round again.
  const scratch = new JobWorkspace(first.dir, jobId).scratchDir;
  await writeFile(path.join(scratch, "go"), "");
  await eventually(() => second.w.openJobState(jobId)?.roundResult(1), Boolean, { timeoutMs: 30_000, what: "the update reached the restarted gateway" });
  const r = await second.w.handler(spec, taskContext(log));
  t.like(r, { round: 1, samples: 10n });
  t.deepEqual(readWeights(await t.context.artifacts.uploaded(r.updateArtifactId!)), [1, 1, 1, 1]);
  t.deepEqual((await jobContainers(t.context.engine.docker, jobId)).map((c) => c.Id), [before!.Id]);
  await second.w.handler(trainingSpec({ jobId, action: TrainingAction.STOP }), taskContext(log));
});

test("an evaluation round ends when the workload asks for the next one, with metrics and no update", async (t) => {
  const { w } = await t.context.workloads();
  const jobId = randomUUID();
  const r = await w.handler(trainingSpec({ jobId, bundleArtifactId: t.context.bundleId, round: 1, evaluate: true }), taskContext(log));
  t.like(r, { round: 1, samples: 0n, updateArtifactId: "" });
  t.deepEqual(r.report!.metrics!.map((m) => m.label), ["loss"]);
  await w.handler(trainingSpec({ jobId, action: TrainingAction.STOP }), taskContext(log));
});

test("a job no task comes back for is removed after the idle timeout", async (t) => {
  const { w, dir } = await t.context.workloads({ policy: { idleTimeoutMs: 300 } });
  const jobId = randomUUID();
  const ctx = taskContext(log);
  const round = w.handler(trainingSpec({ jobId, bundleArtifactId: t.context.bundleId, round: 1, roundTimeoutSeconds: 0, configJson: JSON.stringify({ hang: true }) }), ctx);
  await eventually(() => w.openJobState(jobId)?.container, Boolean, { timeoutMs: 60_000, what: "the container started" });
  ctx.abort.abort(new Error("cancelled"));
  await t.throwsAsync(round);
  await eventually(
    async () => {
      await w.sweep();
      return (await jobContainers(t.context.engine.docker, jobId)).length === 0 && !existsSync(path.join(dir, jobId));
    },
    Boolean,
    { timeoutMs: 30_000, what: "the idle job removed" },
  );
  t.is(w.openJobState(jobId), undefined);
});
