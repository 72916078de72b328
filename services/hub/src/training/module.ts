import { JobService, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { TaskKind, type TrainingReport } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { PeriodicJob } from "@flip/shared/process/periodic-job.js";
import { artifactDeps, type ArtifactDeps } from "../artifacts/deps.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import type { TaskEnded, TaskEvents } from "../tasks/task-events.js";
import { Aggregator } from "./aggregation.js";
import { JOB_QUEUE_CHANNEL } from "./events.js";
import { registerTrainingHandlers } from "./handlers.js";
import { storeLiveReport } from "./reports.js";
import { applyOpenRound, applyStopTask, jobTaskOf } from "./rounds.js";
import { schedulePass } from "./scheduler.js";

/** How often the scheduler and the round reconciler run besides the notices that wake them. */
const SWEEP_MS = 5_000;

export interface TrainingModule extends HubModule {
  /** Live reports from the link (TaskProgress of training tasks). */
  storeLiveReport(trustId: string, taskId: string, report: TrainingReport): Promise<void>;
}

/**
 * Federated training: models, jobs, the scheduler that starts queued jobs on free GPUs, and the round
 * coordinator that turns ended round tasks into updates, closes rounds and has them averaged.
 */
export function trainingModule(deps: HubDeps, taskEvents: TaskEvents): TrainingModule {
  const { db, log } = deps;
  let artifacts: ArtifactDeps | undefined;
  let aggregator: Aggregator | undefined;
  const unsubscribes: (() => void)[] = [];
  const started = () => {
    if (!artifacts || !aggregator) throw new Error("training module used before start()");
    return { artifacts, aggregator };
  };

  // One application at a time per job; ends that arrive meanwhile are applied together by the next one.
  const applying = new Map<string, Promise<void>>();
  const pending = new Set<string>();
  const applyJob = (jobId: string): Promise<void> => {
    const running = applying.get(jobId);
    if (running) {
      pending.add(jobId);
      return running;
    }
    const run = (async () => {
      do {
        pending.delete(jobId);
        const closed = await applyOpenRound(db.em(), jobId);
        if (closed && "outcome" in closed) deps.metrics.roundEnded(closed.outcome, closed.startedAt);
        else if (closed) void started().aggregator.aggregate(closed);
      } while (pending.has(jobId));
    })().finally(() => applying.delete(jobId));
    applying.set(jobId, run);
    return run;
  };
  const onEnded = async (ended: TaskEnded) => {
    const jt = await jobTaskOf(db.em(), ended.taskId);
    if (!jt) return;
    if (jt.action === "stop") await applyStopTask(db.em(), ended, jt);
    else await applyJob(jt.job_id);
  };

  /** Round tasks that ended without being applied (a notice missed while down), and rounds left aggregating. */
  const reconcile = async () => {
    const unapplied = await db.em().execute<{ job_id: string }[]>(
      `select jt.job_id from job_task jt
       join job j on j.id = jt.job_id and j.state = 'running'
       join job_round r on r.job_id = jt.job_id and r.round = jt.round and r.state = 'open'
       join task t on t.id = jt.task_id and t.state in ('succeeded', 'failed', 'cancelled', 'expired')
       where jt.action = 'round'
         and not exists (select 1 from job_update u where u.job_id = jt.job_id and u.round = jt.round and u.trust_id = jt.trust_id)
         and not exists (select 1 from job_event e where e.job_id = jt.job_id and e.dedupe_key = 'missed:' || jt.round || ':' || jt.trust_id)`,
    );
    for (const jobId of new Set(unapplied.map((u) => u.job_id))) await applyJob(jobId);
    const aggregating = await db.em().execute<{ job_id: string; round: number }[]>(
      "select r.job_id, r.round from job_round r join job j on j.id = r.job_id and j.state = 'running' where r.state = 'aggregating'",
    );
    for (const a of aggregating) void started().aggregator.aggregate({ jobId: a.job_id, round: a.round });
  };

  const sweep = new PeriodicJob(
    "training-sweep",
    SWEEP_MS,
    async () => {
      await schedulePass(db.em());
      await reconcile();
    },
    log,
  );
  let scheduling: Promise<unknown> | undefined;
  const scheduleSoon = () => {
    scheduling ??= schedulePass(db.em())
      .catch((err: unknown) => log.warn({ err }, "scheduling pass failed; the sweep retries"))
      .finally(() => (scheduling = undefined));
  };

  return {
    services: [ModelService, JobService],
    storeLiveReport: (trustId, taskId, report) => storeLiveReport(db.em(), trustId, taskId, report),
    async start() {
      artifacts = await artifactDeps(deps);
      aggregator = new Aggregator({ db, artifacts, log, metrics: deps.metrics });
      await aggregator.removeLeftovers();
      unsubscribes.push(
        taskEvents.subscribe(
          onEnded,
          { kinds: [TaskKind.TRAINING], onMissed: () => void reconcile().catch((err: unknown) => log.warn({ err }, "training reconcile failed")) },
        ),
      );
      unsubscribes.push(await db.notifier.subscribe(JOB_QUEUE_CHANNEL, scheduleSoon));
      await reconcile();
      sweep.start();
      scheduleSoon();
    },
    async stop() {
      for (const u of unsubscribes.splice(0)) u();
      await Promise.allSettled([...applying.values()]);
      await sweep.stop();
      await scheduling;
      await aggregator?.stop();
    },
    routes: (router) => registerTrainingHandlers(router, deps, () => started().artifacts),
  };
}

