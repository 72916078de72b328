import type { ConnectRouter } from "@connectrpc/connect";
import {
  CreateJobRequestSchema,
  CreateJobResponseSchema,
  CreateModelRequestSchema,
  CreateModelResponseSchema,
  JobKind,
  JobService,
  ModelService,
} from "@flip/gen/flip/hub/v1/training_pb.js";
import type { ArtifactDeps } from "../artifacts/deps.js";
import { readArtifact } from "../artifacts/hub-artifacts.js";
import { InvalidInputError, NotFoundError } from "../domain/errors.js";
import { nextPageToken, readPage } from "../domain/paging.js";
import { answer, callerOf, type HubDeps } from "../rpc/hub-context.js";
import { createCallOf, createOnce } from "../rpc/idempotency-keys.js";
import { abortJob, createJob, deleteModel, listJobs, visibleJob } from "./jobs.js";
import { listJobMetrics } from "./metrics.js";
import { createModel, listModels, visibleModel } from "./models.js";
import { jobsToProto, jobToProto, metricToProto, modelsToProto, modelToProto } from "./to-proto.js";
import { watchJob } from "./watch.js";
import { weightsOf } from "./weights.js";

/** flip.hub.v1.ModelService and JobService: thin handlers over the training domain (models.ts, jobs.ts, weights.ts, metrics.ts). */
export function registerTrainingHandlers(router: ConnectRouter, deps: HubDeps, artifacts: () => ArtifactDeps): void {
  const { db, log } = deps;
  router.service(ModelService, {
    createModel: (req, ctx) =>
      answer(log, ctx, () =>
        createOnce(db.em(), createCallOf(ctx, CreateModelRequestSchema, req, CreateModelResponseSchema, deps.config.idempotencyKeyTtlMs), async (em) => {
          const model = await createModel(em, artifacts(), callerOf(ctx), {
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
          return { model: await modelToProto(em, model) };
        }),
      ),
    getModel: (req, ctx) => answer(log, ctx, async () => ({ model: await modelToProto(db.em(), (await visibleModel(db.em(), callerOf(ctx), req.modelId)).model) })),
    listModels: (req, ctx) =>
      answer(log, ctx, async () => {
        const page = readPage(req.page);
        const models = await listModels(db.em(), callerOf(ctx), req.projectId, page);
        return { models: await modelsToProto(db.em(), models), page: { nextPageToken: nextPageToken(page, models.length) } };
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
        return await createOnce(db.em(), createCallOf(ctx, CreateJobRequestSchema, req, CreateJobResponseSchema, deps.config.idempotencyKeyTtlMs), async (em) => {
          const job = await createJob(em, callerOf(ctx), {
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
          return { job: await jobToProto(em, job) };
        });
      }),
    getJob: (req, ctx) => answer(log, ctx, async () => ({ job: await jobToProto(db.em(), await visibleJob(db.em(), callerOf(ctx), req.jobId)) })),
    listJobs: (req, ctx) =>
      answer(log, ctx, async () => {
        const page = readPage(req.page);
        const jobs = await listJobs(db.em(), callerOf(ctx), req.modelId, page);
        return { jobs: await jobsToProto(db.em(), jobs), page: { nextPageToken: nextPageToken(page, jobs.length) } };
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
        const rows = await listJobMetrics(db.em(), job.id, { label: req.label, trust: req.trustId, round: req.round }, page);
        return { metrics: rows.map(metricToProto), page: { nextPageToken: nextPageToken(page, rows.length) } };
      }),
    async *downloadWeights(req, ctx) {
      try {
        const job = await visibleJob(db.em(), callerOf(ctx), req.jobId);
        const { round, artifactId } = await weightsOf(db.em(), job, req.round);
        if (!artifactId) throw new NotFoundError(req.round ? `weights of round ${req.round} of job` : "aggregated weights of job", job.id);
        const reader = await readArtifact(artifacts(), artifactId);
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
}
