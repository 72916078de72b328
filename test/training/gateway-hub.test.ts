import { mkdtemp, readFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import { JobEventKind, JobService, JobState, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { ensureDockerEngine, type DockerEngine } from "@flip/shared/docker/engine.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { createArtifactClient, type ArtifactClient } from "@flip/trust-gateway/artifacts/index.js";
import type { RunningGateway } from "@flip/trust-gateway/gateway.js";
import type { TaskLogEntry } from "@flip/trust-gateway/tasks/task-log.js";
import { WorkloadEngine } from "@flip/trust-gateway/training/containers.js";
import { readTrainingPolicy } from "@flip/trust-gateway/training/policy.js";
import { hubArtifactTransfers } from "@flip/trust-gateway/training/transfers.js";
import { TrainingWorkloads } from "@flip/trust-gateway/training/workloads.js";
import { approvedProject, startHandlerGateway } from "../support/training.js";
import { BOOTSTRAP_TOKEN, startTestHub, type TestHub } from "../support/test-hub.js";
import { ensureTestImage, readWeights, TEST_IMAGE, WORKLOAD_SOURCE } from "./gateway-fixtures.js";

/**
 * The gateway's training side with the real hub: containers train, updates and bundles travel as
 * artifacts over the hub's ArtifactService, reports reach the hub live and with the results.
 */
interface Trust {
  code: string;
  id: string;
  gateway: RunningGateway;
  workloads: TrainingWorkloads;
  engine: WorkloadEngine;
  artifacts: ArtifactClient;
  taskLog: Omit<TaskLogEntry, "at">[];
}
interface Ctx {
  hub: TestHub;
  docker: DockerEngine;
  trusts: Trust[];
}
const test = anyTest as TestFn<Ctx>;
const log = createLogger({ service: "test", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });

test.before(async (t) => {
  const docker = await ensureDockerEngine({ log });
  await ensureTestImage(docker, log);
  const hub = await startTestHub();
  const trusts: Trust[] = [];
  t.context = { hub, docker, trusts };
  for (const code of ["north", "south"]) {
    const reg = await hub.registerTrust(code);
    const dir = await mkdtemp(path.join(os.tmpdir(), `flip-gw-hub-${code}-`));
    const artifacts = createArtifactClient({ baseUrl: hub.hub.url, apiKey: reg.apiKey });
    const engine = new WorkloadEngine(docker.docker, code, dir, log);
    const taskLog: Trust["taskLog"] = [];
    const workloads = new TrainingWorkloads({
      engine,
      trustCode: code,
      dir,
      policy: readTrainingPolicy({ FLIP_TRAINING_IMAGES: "flip-test/*", FLIP_TRAINING_MEMORY_MIB: "512", FLIP_TRAINING_FORWARD_LOGS: code === "north" ? "on" : "off" }),
      transfers: hubArtifactTransfers(artifacts, log),
      taskLog: { append: (e) => taskLog.push(e) },
      log,
      stopGraceMs: 2_000,
    });
    await workloads.start();
    const gateway = await startHandlerGateway(hub.hub.url, { code, apiKey: reg.apiKey }, { training: workloads.handler });
    trusts.push({ code, id: reg.id, gateway, workloads, engine, artifacts, taskLog });
  }
});

test.after.always(async (t) => {
  for (const trust of t.context.trusts ?? []) {
    await trust.gateway.close();
    await trust.workloads.close();
    trust.artifacts.close();
    for (const c of await trust.engine.managed()) await trust.engine.stopAndRemove(c.id, 0);
  }
  await t.context.hub?.close();
});

test("two trusts train two rounds in containers through the real hub; the job completes and its containers are removed", async (t) => {
  const { hub, trusts } = t.context;
  const models = hub.client(ModelService, BOOTSTRAP_TOKEN);
  const jobs = hub.client(JobService, BOOTSTRAP_TOKEN);
  const projectId = await approvedProject(hub, trusts.map((tr) => tr.id));
  const { model } = await models.createModel({
    projectId,
    name: "gateway-e2e",
    image: TEST_IMAGE,
    configJson: "{}",
    files: [{ path: "main.py", content: await readFile(WORKLOAD_SOURCE) }],
  });
  const { job } = await jobs.createJob({ modelId: model!.id, trusts: ["north", "south"], rounds: 2, minUpdates: 2, roundTimeoutSeconds: 120, idempotencyKey: "gw-e2e" });
  const done = (await eventually(() => jobs.getJob({ jobId: job!.id }), (r) => r.job!.state >= JobState.COMPLETED, { timeoutMs: 180_000, what: "the job to end" })).job!;
  t.is(done.state, JobState.COMPLETED, done.endReason);
  t.deepEqual(done.roundHistory.map((r) => [r.round, r.updates, Number(r.samples)]), [
    [1, 2, 20],
    [2, 2, 20],
  ]);
  // Each round every trust adds 1 to the global weights (zeros at first): the average after two rounds is 2.
  const parts: Uint8Array[] = [];
  for await (const m of jobs.downloadWeights({ jobId: job!.id, round: 0 })) parts.push(m.data);
  t.deepEqual(readWeights(Buffer.concat(parts)), [2, 2, 2, 2]);

  const { metrics } = await jobs.listMetrics({ jobId: job!.id, label: "loss" });
  const codeOf = (trustId: string) => trusts.find((tr) => tr.id === trustId)?.code;
  t.deepEqual(metrics.map((m) => [codeOf(m.trustId), m.value]).sort(), [
    ["north", 0.5],
    ["north", 1],
    ["south", 0.5],
    ["south", 1],
  ]);

  // Only the trust whose policy lets output leave sent its workload's lines to the hub.
  const logTrusts = new Set<string>();
  for await (const item of jobs.watchJob({ jobId: job!.id })) {
    if (item.item.case === "event" && item.item.value.kind === JobEventKind.LOG && item.item.value.message.includes("training from")) logTrusts.add(item.item.value.trustId);
  }
  t.deepEqual([...logTrusts], [trusts.find((tr) => tr.code === "north")!.id]);

  for (const trust of trusts) {
    await eventually(() => trust.engine.managed(), (cs) => cs.length === 0, { timeoutMs: 60_000, what: `trust ${trust.code}'s container removed after STOP` });
    t.true(trust.taskLog.some((e) => e.event === "workload_output" && e.lines?.includes("job done")));
  }
});
