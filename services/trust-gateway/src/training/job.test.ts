import { mkdtemp } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { TrainingJob } from "./job.js";
import { ReportBuffer, SeqClock } from "./reports.js";
import { WorkloadOutput } from "./workload-output.js";
import { JobWorkspace, type JobSettings } from "./workspace.js";

const SETTINGS: JobSettings = {
  jobId: "7b0c5a52-0000-4000-8000-000000000002",
  projectId: "proj1",
  image: "flip/train-numpy:1",
  gpus: 0,
  gpuIndices: [],
  configJson: "{}",
  rounds: 2,
  evaluate: false,
  roundTimeoutSeconds: 60,
  bundleArtifactId: "",
};

async function openJob(root: string, settings: JobSettings | undefined): Promise<TrainingJob> {
  const reports = new ReportBuffer(new SeqClock(), { logBytesPerRound: 0 });
  return await TrainingJob.open(
    {
      workspace: new JobWorkspace(root, SETTINGS.jobId),
      reports,
      maxUpdateBytes: 1024,
      output: () => new WorkloadOutput({ jobId: SETTINGS.jobId, taskLog: { append() {} }, reports, forward: false, where: () => ({ round: 0, taskId: "", attempt: 0 }) }),
    },
    settings,
  );
}

const never = new AbortController().signal;

test("an evaluation round ends when the workload asks for the next one", async (t) => {
  const job = await openJob(await mkdtemp(path.join(os.tmpdir(), "flip-job-")), { ...SETTINGS, evaluate: true });
  await job.openRound(1, false, { ...SETTINGS, evaluate: true });
  t.like(await job.nextRound(0, never), { done: false, round: 1, weightsFile: undefined });
  const round = job.waitForRound(1, never);
  const next = job.nextRound(0, never);
  t.deepEqual(await round, { kind: "done", result: { samples: 0n, evaluated: true } });
  job.end();
  t.deepEqual(await next, { done: true });
});

test("a round ends for the round task when the container exits, and waiting stops when the task is cancelled", async (t) => {
  const job = await openJob(await mkdtemp(path.join(os.tmpdir(), "flip-job-")), SETTINGS);
  await job.openRound(1, false, SETTINGS);
  job.containerStarted({ id: "c1" });
  const waiting = job.waitForRound(1, never);
  job.containerExited("other", { code: 1, oomKilled: false });
  job.containerExited("c1", { code: 3, oomKilled: true });
  t.deepEqual(await waiting, { kind: "exited", exit: { code: 3, oomKilled: true } });
  const cancel = new AbortController();
  job.containerStarted({ id: "c2" });
  const cancelled = job.waitForRound(1, cancel.signal);
  cancel.abort(new Error("round cancelled"));
  await t.throwsAsync(cancelled, { message: "round cancelled" });
});

test("a restarted gateway reopens the job on the round it was on, with the rounds already done", async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), "flip-job-"));
  const job = await openJob(root, SETTINGS);
  await job.openRound(2, true, SETTINGS);
  await job.finishRound(1, { samples: 5n, evaluated: false });
  const again = await openJob(root, undefined);
  t.is(again.round, 2);
  t.is(again.token, job.token);
  t.deepEqual(again.settings, SETTINGS);
  t.deepEqual(again.roundResult(1), { samples: 5n, evaluated: false });
  t.like(await again.nextRound(0, never), { done: false, round: 2, weightsFile: again.workspace.weightsPath(2) });
});
