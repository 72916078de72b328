import { open } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  GetCohortResponseSchema,
  GetConfigResponseSchema,
  GetGlobalWeightsResponseSchema,
  ListImagesResponseSchema,
  PushUpdateResponseSchema,
  ReadImageResponseSchema,
  RuntimeService,
  type GetGlobalWeightsResponse,
  type PushUpdateRequest,
} from "@flip/gen/flip/runtime/v1/runtime_pb.js";
import type { DataAccessClient } from "@flip/data-access/client.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { MAX_LINE_CHARS } from "./container-output.js";
import { JobImagesError, type JobImages } from "./images.js";
import { JobEndedError, RoundClosedError, UpdateRejectedError, type TrainingJob } from "./job.js";

/** Bytes per GetGlobalWeights and ReadImage message. */
export const CHUNK_BYTES = 1024 * 1024;
/** Limits on what one call may report, so a runaway workload cannot flood the trust or the hub. */
export const MAX_METRICS_PER_CALL = 1000;
export const MAX_LOG_LINES_PER_CALL = 1000;
const MAX_LABEL_CHARS = 200;
const MAX_MESSAGE_CHARS = 2000;
const MAX_DETAILS = 50;

export interface RuntimeServiceDeps {
  job: TrainingJob;
  trustCode: string;
  /** The trust's data-access service; without it GetCohort fails with FAILED_PRECONDITION. */
  dataAccess: DataAccessClient | undefined;
  /** The project's images through the trust's imaging service; without one, ListImages and ReadImage fail with FAILED_PRECONDITION. */
  images: JobImages | undefined;
  log: Logger;
}

/**
 * flip.runtime.v1.RuntimeService for one job, as its workload calls it through the job's socket (the
 * caller's token was checked before any of this runs). Errors carry a code and a message meant for the
 * researcher: never patient data, never the gateway's internals.
 */
export function createRuntimeService(deps: RuntimeServiceDeps): ServiceImpl<typeof RuntimeService> {
  const { job, log } = deps;
  const handled = async <T>(rpc: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      throw toConnectError(e, rpc, deps);
    }
  };
  /** The job's images, or FAILED_PRECONDITION when the trust runs no imaging service. */
  const jobImages = (): JobImages => {
    if (!deps.images) throw new ConnectError(`trust ${deps.trustCode} has no imaging service: no images are available to workloads there`, Code.FailedPrecondition);
    return deps.images;
  };
  return {
    async getConfig() {
      return await handled("GetConfig", async () => {
        if (job.done) throw new JobEndedError("the job has ended at this trust");
        const s = job.settings;
        return create(GetConfigResponseSchema, {
          jobId: s.jobId,
          projectId: s.projectId,
          trustCode: deps.trustCode,
          rounds: s.rounds,
          configJson: s.configJson,
          mode: s.evaluate ? "evaluate" : "train",
          gpus: s.gpus,
          currentRound: job.round,
        });
      });
    },

    async *getCohort(req, ctx) {
      if (!deps.dataAccess) throw new ConnectError(`no data-access service is configured at trust ${deps.trustCode}: the cohort cannot be read there`, Code.FailedPrecondition);
      try {
        for await (const batch of deps.dataAccess.getCohortRows({ projectId: job.settings.projectId, batchSize: req.batchSize }, { signal: ctx.signal })) {
          yield create(GetCohortResponseSchema, { columns: batch.columns, rows: batch.rows.map((r) => ({ values: r.values })) });
        }
      } catch (e) {
        if (ctx.signal.aborted) throw ConnectError.from(e);
        const err = ConnectError.from(e);
        log.warn({ rpc: "GetCohort", jobId: job.settings.jobId, code: Code[err.code] }, "data-access refused or failed the cohort rows");
        // Data-access words its errors for the gateway (no rows, no identifiers): the workload may see them.
        throw new ConnectError(`cohort rows at trust ${deps.trustCode}: ${err.rawMessage}`, err.code === Code.Unknown ? Code.Unavailable : err.code);
      }
    },

    async listImages(_req, ctx) {
      const images = jobImages();
      return await handled("ListImages", async () => {
        const list = await images.list(ctx.signal);
        return create(ListImagesResponseSchema, {
          images: list.map((i) => ({ imageId: i.imageId, format: i.format, sizeBytes: BigInt(i.sizeBytes), studyKey: i.studyKey, seriesKey: i.seriesKey, modality: i.modality })),
        });
      });
    },

    async *readImage(req, ctx) {
      const images = jobImages();
      if (req.imageId === "" || req.imageId.length > 200) throw new ConnectError("image_id: give an id from ListImages", Code.InvalidArgument);
      try {
        for await (const chunk of images.read(req.imageId, ctx.signal)) {
          for (let at = 0; at < chunk.byteLength; at += CHUNK_BYTES) yield create(ReadImageResponseSchema, { data: chunk.subarray(at, at + CHUNK_BYTES) });
        }
      } catch (e) {
        throw toConnectError(e, "ReadImage", deps);
      }
    },

    async *getGlobalWeights(req, ctx) {
      let next;
      try {
        next = await job.nextRound(req.round, ctx.signal);
      } catch (e) {
        if (ctx.signal.aborted) throw new ConnectError("the call ended before the round opened", Code.Canceled);
        throw toConnectError(e, "GetGlobalWeights", deps);
      }
      if (next.done) {
        yield create(GetGlobalWeightsResponseSchema, { done: true });
        return;
      }
      // The round's trace (W3C headers on the answer): the workload's calls for this round continue it.
      for (const [key, value] of Object.entries(next.traceContext)) ctx.responseHeader.set(key, value);
      if (!next.weightsFile) {
        yield create(GetGlobalWeightsResponseSchema, { round: next.round, sizeBytes: 0n });
        return;
      }
      try {
        yield* weightsMessages(next.round, next.weightsFile, ctx.signal);
      } catch (e) {
        if (ctx.signal.aborted) throw new ConnectError("the call ended while the weights were sent", Code.Canceled);
        throw toConnectError(e, "GetGlobalWeights", deps);
      }
    },

    async pushUpdate(requests) {
      return await handled("PushUpdate", async () => {
        const iterator = requests[Symbol.asyncIterator]();
        const first = await iterator.next();
        if (first.done) throw new UpdateRejectedError("the update stream had no messages; the first carries round and sample_count");
        const head: PushUpdateRequest = first.value;
        async function* data(): AsyncGenerator<Uint8Array> {
          yield head.data;
          for (let r = await iterator.next(); !r.done; r = await iterator.next()) yield r.value.data;
        }
        const sizeBytes = await job.pushUpdate(head.round, head.sampleCount, data());
        log.info({ jobId: job.settings.jobId, round: head.round, sizeBytes, samples: head.sampleCount.toString() }, "workload pushed its update");
        return create(PushUpdateResponseSchema, { sizeBytes: BigInt(sizeBytes) });
      });
    },

    async reportMetrics(req) {
      if (req.metrics.length > MAX_METRICS_PER_CALL) throw new ConnectError(`at most ${MAX_METRICS_PER_CALL} metrics per call (got ${req.metrics.length})`, Code.InvalidArgument);
      for (const [i, m] of req.metrics.entries()) {
        if (m.label.trim() === "") throw new ConnectError(`metrics[${i}]: label is empty`, Code.InvalidArgument);
        if (m.label.length > MAX_LABEL_CHARS || m.xLabel.length > MAX_LABEL_CHARS) throw new ConnectError(`metrics[${i}]: labels are at most ${MAX_LABEL_CHARS} characters`, Code.InvalidArgument);
        if (!Number.isFinite(m.value)) throw new ConnectError(`metrics[${i}] (${m.label}): value ${m.value} is not a finite number`, Code.InvalidArgument);
        if (!Number.isFinite(m.xValue)) throw new ConnectError(`metrics[${i}] (${m.label}): x_value ${m.xValue} is not a finite number`, Code.InvalidArgument);
      }
      for (const m of req.metrics) job.reports.metric({ label: m.label, value: m.value, round: m.round || job.round, xLabel: m.xLabel, xValue: m.xValue });
      return {};
    },

    async reportEvent(req) {
      if (req.kind.trim() === "" || req.kind.length > MAX_LABEL_CHARS) throw new ConnectError(`kind must be 1 to ${MAX_LABEL_CHARS} characters`, Code.InvalidArgument);
      if (req.message.length > MAX_MESSAGE_CHARS) throw new ConnectError(`message is at most ${MAX_MESSAGE_CHARS} characters`, Code.InvalidArgument);
      const details = Object.entries(req.details);
      if (details.length > MAX_DETAILS || details.some(([k, v]) => k.length > MAX_LABEL_CHARS || v.length > MAX_MESSAGE_CHARS)) {
        throw new ConnectError(`details: at most ${MAX_DETAILS} entries, keys of ${MAX_LABEL_CHARS} and values of ${MAX_MESSAGE_CHARS} characters`, Code.InvalidArgument);
      }
      job.reports.event({ kind: req.kind, round: req.round || job.round, message: req.message, details: req.details });
      return {};
    },

    async writeLog(req) {
      if (req.lines.length > MAX_LOG_LINES_PER_CALL) throw new ConnectError(`at most ${MAX_LOG_LINES_PER_CALL} lines per call (got ${req.lines.length})`, Code.InvalidArgument);
      const long = req.lines.findIndex((l) => l.length > MAX_LINE_CHARS);
      if (long >= 0) throw new ConnectError(`lines[${long}] is longer than ${MAX_LINE_CHARS} characters`, Code.InvalidArgument);
      job.output.lines(req.lines.flatMap((l) => l.split("\n")));
      return {};
    },
  };
}

/** The weights file as GetGlobalWeights messages: the size on the first, at most CHUNK_BYTES of data on each. */
async function* weightsMessages(round: number, file: string, signal: AbortSignal): AsyncGenerator<GetGlobalWeightsResponse> {
  const fh = await open(file, "r");
  try {
    const size = (await fh.stat()).size;
    let at = 0;
    do {
      signal.throwIfAborted();
      const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, size - at));
      const { bytesRead } = await fh.read(buf, 0, buf.length, at);
      if (bytesRead !== buf.length) throw new Error("the weights file changed while it was read");
      yield create(GetGlobalWeightsResponseSchema, { round, data: buf, ...(at === 0 ? { sizeBytes: BigInt(size) } : {}) });
      at += bytesRead;
    } while (at < size);
  } finally {
    await fh.close();
  }
}

function toConnectError(e: unknown, rpc: string, deps: RuntimeServiceDeps): ConnectError {
  if (e instanceof ConnectError) return e;
  if (e instanceof JobEndedError || e instanceof RoundClosedError) return new ConnectError(e.message, Code.FailedPrecondition);
  if (e instanceof UpdateRejectedError) return new ConnectError(e.message, Code.InvalidArgument);
  if (e instanceof JobImagesError) return new ConnectError(e.message, e.code);
  deps.log.error({ err: e, rpc, jobId: deps.job.settings.jobId }, "runtime call failed at the gateway");
  return new ConnectError(`${rpc} failed at trust ${deps.trustCode} (details in the gateway's log)`, Code.Internal);
}
