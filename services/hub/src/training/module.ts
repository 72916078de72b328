import type { ConnectRouter } from "@connectrpc/connect";
import { JobKind, JobService, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { TaskKind, type TrainingReport } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { PeriodicJob } from "@flip/shared/process/periodic-job.js";
import { artifactDeps, type ArtifactDeps } from "../artifacts/deps.js";
import { readArtifact } from "../artifacts/hub-artifacts.js";
import type { HubModule } from "../hub-module.js";
import { answer, callerOf, type HubDeps } from "../rpc/hub-context.js";
import { InvalidInputError, NotFoundError } from "../rpc/domain-errors.js";
import { nextPageToken, readPage } from "../rpc/paging.js";
import type { TaskEnded, TaskEvents } from "../tasks/task-events.js";
import { Aggregator } from "./aggregation.js";
import { JOB_QUEUE_CHANNEL } from "./events.js";
import { abortJob, createJob, deleteModel, listJobs, visibleJob } from "./jobs.js";
import { createModel, listModels, visibleModel } from "./models.js";
import { storeLiveReport } from "./reports.js";
import { applyOpenRound, applyStopTask, jobTaskOf } from "./rounds.js";
import { schedulePass } from "./scheduler.js";
import { jobToProto, metricToProto, modelToProto, type MetricRow } from "./to-proto.js";
import { watchJob } from "./watch.js";

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
        if (closed) void started().aggregator.aggregate(closed);
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
      aggregator = new Aggregator({ db, artifacts, log });
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
    routes(router: ConnectRouter) {
      router.service(ModelService, {
        createModel: (req, ctx) =>
          answer(log, ctx, async () => {
            const model = await createModel(db.em(), started().artifacts, callerOf(ctx), {
              projectId: req.projectId,
              name: req.name,
              description: req.description,
              image: req.image,
              configJson: req.configJson,
              files: req.files,
              initialWeights: req.initialWeights,
              idempotencyKey: req.idempotencyKey,
            });
            log.info({ modelId: model.id, projectId: model.project_id }, "model created");
            return { model: modelToProto(model) };
          }),
        getModel: (req, ctx) => answer(log, ctx, async () => ({ model: modelToProto((await visibleModel(db.em(), callerOf(ctx), req.modelId)).model) })),
        listModels: (req, ctx) =>
          answer(log, ctx, async () => {
            const page = readPage(req.page);
            const models = await listModels(db.em(), callerOf(ctx), req.projectId, page);
            return { models: models.map(modelToProto), page: { nextPageToken: nextPageToken(page, models.length) } };
          }),
        deleteModel: (req, ctx) =>
          answer(log, ctx, async () => {
            await deleteModel(db.em(), callerOf(ctx), req.modelId);
            return {};
          }),
      });
      router.service(JobService, {
        createJob: (req, ctx) =>
          answer(log, ctx, async () => {
            if (req.kind !== JobKind.UNSPECIFIED && req.kind !== JobKind.TRAIN && req.kind !== JobKind.EVALUATE) throw new InvalidInputError("kind", "must be TRAIN or EVALUATE");
            const job = await createJob(db.em(), callerOf(ctx), {
              modelId: req.modelId,
              trusts: req.trusts,
              rounds: req.rounds,
              gpusPerTrust: req.gpusPerTrust,
              minUpdates: req.minUpdates,
              roundTimeoutSeconds: req.roundTimeoutSeconds,
              kind: req.kind === JobKind.EVALUATE ? "evaluate" : "train",
              idempotencyKey: req.idempotencyKey,
            });
            log.info({ jobId: job.id, modelId: job.model_id, trusts: job.trust_ids.length }, "job queued");
            return { job: await jobToProto(db.em(), job) };
          }),
        getJob: (req, ctx) => answer(log, ctx, async () => ({ job: await jobToProto(db.em(), await visibleJob(db.em(), callerOf(ctx), req.jobId)) })),
        listJobs: (req, ctx) =>
          answer(log, ctx, async () => {
            const page = readPage(req.page);
            const jobs = await listJobs(db.em(), callerOf(ctx), req.modelId, page);
            return { jobs: await Promise.all(jobs.map((j) => jobToProto(db.em(), j))), page: { nextPageToken: nextPageToken(page, jobs.length) } };
          }),
        abortJob: (req, ctx) =>
          answer(log, ctx, async () => {
            const job = await abortJob(db.em(), callerOf(ctx), req.jobId, req.reason);
            log.info({ jobId: job.id, state: job.state }, "job abort requested");
            return { job: await jobToProto(db.em(), job) };
          }),
        async *watchJob(req, ctx) {
          try {
            yield* watchJob(deps, callerOf(ctx), req.jobId, ctx.signal);
          } catch (e) {
            await answer(log, ctx, () => Promise.reject(e));
          }
        },
        listMetrics: (req, ctx) =>
          answer(log, ctx, async () => {
            const job = await visibleJob(db.em(), callerOf(ctx), req.jobId);
            const page = readPage(req.page);
            const rows = await db.em().execute<(MetricRow & { code: string })[]>(
              `select m.*, t.code from job_metric m join trust t on t.id = m.trust_id
               where m.job_id = ? and (? = '' or m.label = ?) and (? = '' or t.code = ? or m.trust_id::text = ?) and (? = 0 or m.round = ?)
               order by m.id offset ? limit ?`,
              [job.id, req.label, req.label, req.trustId, req.trustId, req.trustId, req.round, req.round, page.offset, page.limit],
            );
            return { metrics: rows.map(metricToProto), page: { nextPageToken: nextPageToken(page, rows.length) } };
          }),
        async *downloadWeights(req, ctx) {
          try {
            const job = await visibleJob(db.em(), callerOf(ctx), req.jobId);
            let artifactId = job.global_weights_artifact_id;
            let round = job.current_round;
            if (req.round !== 0) {
              const [r] = await db.em().execute<{ output_weights_artifact_id: string | null }[]>(
                "select output_weights_artifact_id from job_round where job_id = ? and round = ?",
                [job.id, req.round],
              );
              artifactId = r?.output_weights_artifact_id ?? null;
              round = req.round;
            } else {
              const [r] = await db.em().execute<{ round: number }[]>(
                "select max(round) as round from job_round where job_id = ? and output_weights_artifact_id is not null",
                [job.id],
              );
              round = r?.round ?? 0;
            }
            if (!artifactId) throw new NotFoundError(req.round ? `weights of round ${req.round} of job` : "aggregated weights of job", job.id);
            const reader = await readArtifact(started().artifacts, artifactId);
            const size = BigInt(reader.artifact.sizeBytes);
            let offset = 0n;
            for await (const chunk of reader.chunks) {
              yield { round, offset, data: chunk, sizeBytes: size, sha256: "" };
              offset += BigInt(chunk.length);
            }
            yield { round, offset, data: new Uint8Array(0), sizeBytes: size, sha256: reader.sha256 };
          } catch (e) {
            await answer(log, ctx, () => Promise.reject(e));
          }
        },
      });
    },
  };
}

