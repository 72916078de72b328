import { existsSync } from "node:fs";
import { readFile, readdir, rm } from "node:fs/promises";
import * as path from "node:path";
import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { context } from "@opentelemetry/api";
import { ModelBundleSchema } from "@flip/gen/flip/hub/v1/training_pb.js";
import { TrainingAction, type TrainingOutputSchema, type TrainingSpec } from "@flip/gen/flip/link/v1/tasks_pb.js";
import type { DataAccessClient } from "@flip/data-access/client.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { RunningServer } from "@flip/shared/server/serve.js";
import { injectTraceContext, withSpan } from "@flip/shared/telemetry/trace-context.js";
import { TaskErrorCode, TaskFailure, type TaskContext, type TaskHandler } from "../tasks/task-handler.js";
import type { TaskLog } from "../tasks/task-log.js";
import { containerOptions, dockerMessage, dockerStatus, type WorkloadEngine } from "./containers.js";
import type { ImagingClient } from "@flip/imaging/client.js";
import { imagingServiceImages } from "./images.js";
import { TrainingJob, type ContainerExit } from "./job.js";
import { imageAllowed, POLICY_VARS, type TrainingPolicy } from "./policy.js";
import { ReportBuffer, SeqClock } from "./reports.js";
import { startRuntimeServer } from "./runtime-server.js";
import type { ArtifactTransfers } from "./transfers.js";
import { WorkloadOutput } from "./workload-output.js";
import { BundlePathError, JobWorkspace, updateArtifactId, type JobSettings } from "./workspace.js";

type TrainingOutput = MessageInitShape<typeof TrainingOutputSchema>;

export interface TrainingDeps {
  engine: WorkloadEngine;
  trustCode: string;
  /** Where job workspaces live: `<stateDir>/training`. */
  dir: string;
  policy: TrainingPolicy;
  transfers: ArtifactTransfers;
  /** The trust's data-access service, for GetCohort. */
  dataAccess?: DataAccessClient | undefined;
  /** The trust's imaging service, for ListImages and ReadImage (the job's project only). */
  imaging?: ImagingClient | undefined;
  taskLog: TaskLog;
  log: Logger;
  /** How long STOP lets the workload exit by itself after it sees `done`; default 5 s. */
  stopGraceMs?: number;
  /** How often idle jobs are looked for; default a minute (or a quarter of the idle timeout, if less). */
  sweepEveryMs?: number;
}

/** A job the gateway has open: its state, its runtime server, and what follows its container. */
interface OpenJob {
  job: TrainingJob;
  server: RunningServer;
  /** Aborts following the current container (its output and its exit). */
  watch: AbortController | undefined;
  /** Resolves when the current container's output has been read to its end. */
  outputDone: Promise<void>;
  flushTimer: NodeJS.Timeout;
}

/** Live reports are sent about this often during a round. */
const LIVE_REPORT_EVERY_MS = 1_000;
/** How long a failure message waits for the last output of a container that exited. */
const OUTPUT_SETTLE_MS = 2_000;

/**
 * Federated training at the trust: one container per job, kept across rounds, driven by the hub's
 * TRAINING tasks (`handler`), talking to the workload through the job's runtime socket. A restarted
 * gateway finds its jobs' containers by their labels and their state in the workspaces (`start`), and
 * removes what no task came back for (`sweep`).
 */
export class TrainingWorkloads {
  readonly handler: TaskHandler<"training">;
  private readonly jobs = new Map<string, OpenJob>();
  private readonly opening = new Map<string, Promise<OpenJob>>();
  /** Workspaces without an open job (found at start): removed when nothing touched them for the idle timeout. */
  private readonly dormant = new Map<string, number>();
  private readonly seq = new SeqClock();
  private readonly closing = new AbortController();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(private readonly deps: TrainingDeps) {
    this.handler = async (spec, ctx) => {
      if (spec.action === TrainingAction.STOP) return await this.stop(spec, ctx);
      if (spec.action === TrainingAction.ROUND) return await this.round(spec, ctx);
      throw new TaskFailure(TaskErrorCode.INVALID, `training task without a known action (${spec.action})`);
    };
  }

  /**
   * Picks up where an earlier gateway left: reopens the jobs whose containers still run (their runtime
   * socket answers again, with the same token), removes exited containers, and keeps other workspaces
   * until the idle timeout (a round task that comes back resumes them).
   */
  async start(): Promise<void> {
    const containers = await this.deps.engine.managed();
    for (const c of containers) {
      const workspace = this.workspace(c.jobId);
      if (c.running && workspace && (await workspace.readState())) {
        const open = await this.openJob(c.jobId, undefined);
        this.follow(open, c.id, Math.floor(Date.now() / 1000));
        this.deps.log.info({ jobId: c.jobId, containerId: c.id }, "reattached to a running training container");
        continue;
      }
      this.deps.log.info({ jobId: c.jobId, containerId: c.id, running: c.running }, "removing a training container no job here can use");
      await this.deps.engine.stopAndRemove(c.id);
    }
    for (const jobId of await this.workspaceIds()) if (!this.jobs.has(jobId)) this.dormant.set(jobId, Date.now());
    const every = this.deps.sweepEveryMs ?? Math.min(60_000, Math.max(1_000, this.deps.policy.idleTimeoutMs / 4));
    this.sweepTimer = setInterval(() => void this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** Stops serving (runtime sockets, container watches). Containers keep running: a restarted gateway reattaches. */
  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.closing.abort();
    await this.sweeping;
    await Promise.allSettled([...this.opening.values()]);
    for (const open of this.jobs.values()) {
      open.watch?.abort();
      clearInterval(open.flushTimer);
      open.job.output.flush();
      await open.server.close(1_000);
    }
    this.jobs.clear();
  }

  /**
   * Removes what no task touched for the idle timeout (at least twice the job's round timeout): open
   * jobs' containers and workspaces, dormant workspaces, and exited containers of jobs not open here.
   */
  async sweep(): Promise<void> {
    if (this.sweeping) return await this.sweeping;
    this.sweeping = (async () => {
      const now = Date.now();
      for (const [jobId, open] of [...this.jobs]) {
        const idleMs = Math.max(this.deps.policy.idleTimeoutMs, 2_000 * open.job.settings.roundTimeoutSeconds);
        if (open.job.busy > 0 || now - open.job.lastTouched < idleMs) continue;
        this.deps.log.warn({ jobId, idleMs: now - open.job.lastTouched }, "no task touched a training job for its idle timeout; removing its container and workspace");
        await this.endJob(open, "idle");
      }
      for (const [jobId, since] of [...this.dormant]) {
        if (this.jobs.has(jobId) || now - since < this.deps.policy.idleTimeoutMs) continue;
        this.dormant.delete(jobId);
        this.deps.log.info({ jobId }, "removing the workspace of a training job no task came back for");
        await this.workspace(jobId)?.remove();
      }
      for (const c of await this.deps.engine.managed()) {
        if (!c.running && !this.jobs.has(c.jobId)) await this.deps.engine.stopAndRemove(c.id);
      }
    })()
      .catch((e: unknown) => this.deps.log.warn({ err: e }, "training sweep failed; trying again later"))
      .finally(() => (this.sweeping = undefined));
    return await this.sweeping;
  }

  /** A job open at this trust (for tests and diagnostics). */
  openJobState(jobId: string): TrainingJob | undefined {
    return this.jobs.get(jobId)?.job;
  }

  /** A round at this trust, in a span the workload's runtime calls for the round continue. */
  private async round(spec: TrainingSpec, ctx: TaskContext): Promise<TrainingOutput> {
    const settings = this.settingsOf(spec);
    const attributes = { "flip.job_id": settings.jobId, "flip.round": spec.round, "flip.trust": this.deps.trustCode };
    return await withSpan("training.round", context.active(), { attributes }, () => this.trainRound(spec, settings, ctx));
  }

  private async trainRound(spec: TrainingSpec, settings: JobSettings, ctx: TaskContext): Promise<TrainingOutput> {
    if (spec.round < 1) throw new TaskFailure(TaskErrorCode.INVALID, "a training round task needs round >= 1");
    await this.checkPolicy(settings);
    const open = await this.openJob(settings.jobId, settings);
    const { job } = open;
    job.busy++;
    job.task = { taskId: ctx.taskId, attempt: ctx.attempt };
    job.lastTouched = Date.now();
    this.dormant.delete(settings.jobId);
    const live = setInterval(() => this.sendLive(job, ctx), LIVE_REPORT_EVERY_MS);
    live.unref();
    try {
      // A round the workload already finished (a task offered again after a gateway restart) only needs its upload.
      if (!job.roundResult(spec.round)) {
        if (spec.round < job.round) throw new TaskFailure(TaskErrorCode.INVALID, `trust ${this.deps.trustCode} is on round ${job.round} of this job; round ${spec.round} is over`);
        ctx.progress(-1, `round ${spec.round}: preparing`);
        await this.ensureBundle(job, settings, ctx.signal);
        const hasWeights = spec.globalWeightsArtifactId !== "";
        if (hasWeights && !existsSync(job.workspace.weightsPath(spec.round))) {
          await this.transfer(() => this.deps.transfers.download(spec.globalWeightsArtifactId, job.workspace.weightsPath(spec.round), ctx.signal), ctx.signal, "the round's global weights");
        }
        await job.openRound(spec.round, hasWeights, settings, injectTraceContext());
        await this.ensureContainer(open, spec.round, ctx);
        ctx.progress(-1, `round ${spec.round}: ${settings.evaluate ? "evaluating" : "training"}`);
        const outcome = await job.waitForRound(spec.round, ctx.signal);
        if (outcome.kind === "exited") {
          if (settings.evaluate && outcome.exit.code === 0) await job.finishRound(spec.round, { samples: 0n, evaluated: true });
          else throw await this.exitFailure(open, spec.round, outcome.exit);
        }
      }
      const result = job.roundResult(spec.round)!;
      let updateId = "";
      if (!result.evaluated) {
        updateId = updateArtifactId(settings.jobId, this.deps.trustCode, spec.round);
        ctx.progress(-1, `round ${spec.round}: uploading the update`);
        await this.transfer(() => this.deps.transfers.uploadUpdate(job.workspace.updatePath(spec.round), updateId, ctx.taskId, ctx.signal), ctx.signal, "the update");
      }
      job.output.flush();
      return { round: spec.round, samples: result.samples, updateArtifactId: updateId, roundsCompleted: job.roundsCompleted(), report: job.reports.takeAll() };
    } finally {
      clearInterval(live);
      job.busy--;
      job.task = undefined;
      job.lastTouched = Date.now();
    }
  }

  private async stop(spec: TrainingSpec, ctx: TaskContext): Promise<TrainingOutput> {
    const jobId = spec.jobId;
    this.dormant.delete(jobId);
    const workspace = this.workspace(jobId);
    const open = this.jobs.get(jobId) ?? (workspace && (await workspace.readState()) ? await this.openJob(jobId, undefined) : undefined);
    this.deps.taskLog.append({ event: "workload_output", taskId: ctx.taskId, attempt: ctx.attempt, kind: "training", jobId, round: 0, lines: [`[flip] the job ended at the hub: ${spec.stopReason || "no reason given"}`] });
    if (!open) {
      // Nothing open here (e.g. the workspace is gone): still make sure no container of the job runs.
      for (const c of (await this.deps.engine.managed()).filter((c) => c.jobId === jobId)) await this.deps.engine.stopAndRemove(c.id);
      await workspace?.remove();
      return { round: 0, roundsCompleted: 0, report: {} };
    }
    const { job } = open;
    job.busy++;
    job.task = { taskId: ctx.taskId, attempt: ctx.attempt };
    job.end();
    const roundsCompleted = job.roundsCompleted();
    try {
      if (job.container && !job.container.exit) {
        const grace = AbortSignal.any([ctx.signal, AbortSignal.timeout(this.deps.stopGraceMs ?? 5_000)]);
        await job.waitForExit(grace).catch(() => undefined);
      }
      return { round: 0, roundsCompleted, report: await this.endJob(open, "stopped") };
    } finally {
      job.busy--;
      job.task = undefined;
    }
  }

  /** Stops and removes the job's containers, closes its socket, removes its workspace; returns what it reported last. */
  private async endJob(open: OpenJob, why: "stopped" | "idle"): Promise<ReturnType<ReportBuffer["takeAll"]>> {
    const { job } = open;
    job.end();
    for (const c of (await this.deps.engine.managed()).filter((c) => c.jobId === job.settings.jobId)) await this.deps.engine.stopAndRemove(c.id);
    await Promise.race([open.outputDone, delay(OUTPUT_SETTLE_MS)]);
    open.watch?.abort();
    clearInterval(open.flushTimer);
    job.output.flush();
    const report = job.reports.takeAll();
    await open.server.close(1_000);
    this.jobs.delete(job.settings.jobId);
    await job.workspace.remove();
    this.deps.log.info({ jobId: job.settings.jobId, why }, "training job ended at this trust; container and workspace removed");
    return report;
  }

  private settingsOf(spec: TrainingSpec): JobSettings {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(spec.jobId)) throw new TaskFailure(TaskErrorCode.INVALID, "the training task has no valid job id");
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(spec.projectId)) throw new TaskFailure(TaskErrorCode.INVALID, "the training task has no valid project id");
    if (spec.image === "") throw new TaskFailure(TaskErrorCode.INVALID, "the training task names no workload image");
    return {
      jobId: spec.jobId,
      projectId: spec.projectId,
      image: spec.image,
      gpus: spec.gpus,
      gpuIndices: [...spec.gpuIndices],
      configJson: spec.configJson,
      rounds: spec.rounds,
      evaluate: spec.evaluate,
      roundTimeoutSeconds: spec.roundTimeoutSeconds,
      bundleArtifactId: spec.bundleArtifactId,
    };
  }

  /** The trust's policy, then the engine's abilities: refusals name the setting or what to install. */
  private async checkPolicy(s: JobSettings): Promise<void> {
    const { policy, trustCode, engine } = this.deps;
    if (!imageAllowed(policy.allowedImages, s.image)) {
      throw new TaskFailure(
        TaskErrorCode.DENIED,
        `trust ${trustCode} does not allow the image ${s.image}: its ${POLICY_VARS.images} allows ${policy.allowedImages.length ? policy.allowedImages.join(", ") : "no images"}`,
      );
    }
    if (policy.maxGpus !== undefined && s.gpus > policy.maxGpus) {
      throw new TaskFailure(TaskErrorCode.DENIED, `trust ${trustCode} allows at most ${policy.maxGpus} GPUs per job (${POLICY_VARS.maxGpus}), and this job asks for ${s.gpus}`);
    }
    try {
      if (s.gpus > 0 && !(await engine.hasNvidiaRuntime())) {
        throw new TaskFailure(
          TaskErrorCode.UNSUPPORTED,
          `trust ${trustCode}: the Docker engine has no NVIDIA runtime, and this job asks for ${s.gpus} GPU${s.gpus === 1 ? "" : "s"}; install the NVIDIA Container Toolkit, or start the job with --gpus 0`,
        );
      }
      if (!(await engine.imagePresent(s.image))) {
        throw new TaskFailure(TaskErrorCode.INVALID, `trust ${trustCode} has no image ${s.image} on its Docker engine; build or load it there (no registry is pulled from), or choose another image`);
      }
    } catch (e) {
      if (e instanceof TaskFailure) throw e;
      throw this.engineFailure(e);
    }
  }

  private engineFailure(e: unknown): TaskFailure {
    this.deps.log.error({ err: e }, "the Docker engine failed a training operation");
    return new TaskFailure(TaskErrorCode.UNAVAILABLE, `trust ${this.deps.trustCode}: the Docker engine failed (${dockerMessage(e).slice(0, 300)})`, true, { cause: e });
  }

  private async openJob(jobId: string, settings: JobSettings | undefined): Promise<OpenJob> {
    const existing = this.jobs.get(jobId);
    if (existing) return existing;
    const pending = this.opening.get(jobId);
    if (pending) return await pending;
    const opening = (async () => {
      const workspace = new JobWorkspace(this.deps.dir, jobId);
      const { policy } = this.deps;
      const reports = new ReportBuffer(this.seq, { logBytesPerRound: policy.forwardLogs ? policy.forwardLogBytesPerRound : 0 });
      const job = await TrainingJob.open(
        {
          workspace,
          reports,
          maxUpdateBytes: policy.maxUpdateBytes,
          output: (j) =>
            new WorkloadOutput({
              jobId,
              taskLog: this.deps.taskLog,
              reports,
              forward: policy.forwardLogs,
              where: () => ({ round: j.round, taskId: j.task?.taskId ?? "", attempt: j.task?.attempt ?? 0 }),
            }),
        },
        settings,
      );
      const server = await startRuntimeServer({
        job,
        trustCode: this.deps.trustCode,
        dataAccess: this.deps.dataAccess,
        images: this.deps.imaging ? imagingServiceImages(this.deps.imaging, job.settings.projectId, this.deps.trustCode) : undefined,
        log: this.deps.log.child({ jobId }),
      });
      const flushTimer = setInterval(() => job.output.flush(), 1_000);
      flushTimer.unref();
      const open: OpenJob = { job, server, watch: undefined, outputDone: Promise.resolve(), flushTimer };
      this.jobs.set(jobId, open);
      return open;
    })();
    this.opening.set(jobId, opening);
    try {
      return await opening;
    } finally {
      this.opening.delete(jobId);
    }
  }

  private async ensureBundle(job: TrainingJob, s: JobSettings, signal: AbortSignal): Promise<void> {
    if (s.bundleArtifactId === "" || (await job.workspace.hasBundle(s.bundleArtifactId))) return;
    const file = path.join(job.workspace.dir, "bundle.pb");
    await this.transfer(() => this.deps.transfers.download(s.bundleArtifactId, file, signal), signal, "the model bundle");
    let files;
    try {
      files = fromBinary(ModelBundleSchema, await readFile(file)).files;
    } catch (e) {
      throw new TaskFailure(TaskErrorCode.INVALID, `trust ${this.deps.trustCode}: the model bundle (artifact ${s.bundleArtifactId}) is not a ModelBundle message`, false, { cause: e });
    }
    try {
      await job.workspace.unpackBundle(s.bundleArtifactId, files);
    } catch (e) {
      if (e instanceof BundlePathError) throw new TaskFailure(TaskErrorCode.INVALID, `trust ${this.deps.trustCode} refused the model bundle: ${e.message}`, false, { cause: e });
      throw e;
    } finally {
      await rm(file, { force: true });
    }
  }

  /**
   * The job's container, running: the one it has, one a restarted gateway finds by its labels, or a
   * new one (an exited one is removed first), which starts from the round's weights.
   */
  private async ensureContainer(open: OpenJob, round: number, ctx: TaskContext): Promise<void> {
    const { job } = open;
    const { engine, trustCode } = this.deps;
    if (job.container && !job.container.exit && open.watch && !open.watch.signal.aborted) return;
    let id: string;
    try {
      const found = await engine.find(job.settings.jobId);
      if (found?.running) {
        this.follow(open, found.id, Math.floor(Date.now() / 1000));
        this.deps.log.info({ jobId: job.settings.jobId, containerId: found.id }, "reattached to the job's running container");
        return;
      }
      if (found) await engine.stopAndRemove(found.id);
      ctx.progress(-1, `round ${round}: starting the workload`);
      id = await engine.run(
        containerOptions({
          trustCode,
          gateway: engine.gateway,
          settings: job.settings,
          workspace: job.workspace,
          token: job.token,
          policy: this.deps.policy,
          traceContext: job.roundTraceContext,
        }),
      );
    } catch (e) {
      const message = dockerMessage(e);
      if (dockerStatus(e) === 404 && /no such image/i.test(message)) {
        throw new TaskFailure(TaskErrorCode.INVALID, `trust ${trustCode} has no image ${job.settings.image} on its Docker engine; build or load it there, or choose another image`, false, { cause: e });
      }
      if (/device driver "nvidia"/.test(message)) {
        throw new TaskFailure(TaskErrorCode.UNSUPPORTED, `trust ${trustCode}: the Docker engine cannot give the workload GPUs (${message.slice(0, 200)}); install the NVIDIA Container Toolkit, or start the job with --gpus 0`, false, { cause: e });
      }
      throw this.engineFailure(e);
    }
    this.follow(open, id, 0);
    job.reports.event({ kind: "container_started", round, message: `workload container started at trust ${trustCode}`, details: {} });
    this.deps.log.info({ jobId: job.settings.jobId, containerId: id, round }, "training container started");
  }

  /** Follows a container's output into the job's output and its exit into the job. */
  private follow(open: OpenJob, id: string, sinceSeconds: number): void {
    open.watch?.abort();
    const watch = new AbortController();
    open.watch = watch;
    const signal = AbortSignal.any([watch.signal, this.closing.signal]);
    const { job } = open;
    job.containerStarted({ id });
    open.outputDone = this.deps.engine.follow(id, sinceSeconds, (lines) => job.output.lines(lines), signal).catch((e: unknown) => {
      if (!signal.aborted) this.deps.log.warn({ err: e, containerId: id }, "could not follow a training container's output");
    });
    void this.watchExit(job, id, signal);
  }

  private async watchExit(job: TrainingJob, id: string, signal: AbortSignal): Promise<void> {
    for (let failures = 0; !signal.aborted; ) {
      try {
        const exit = await this.deps.engine.wait(id, signal);
        this.deps.log.info({ jobId: job.settings.jobId, containerId: id, code: exit.code, oomKilled: exit.oomKilled }, "training container exited");
        job.containerExited(id, exit);
        return;
      } catch (e) {
        if (signal.aborted) return;
        if (dockerStatus(e) === 404) {
          job.containerExited(id, { code: -1, oomKilled: false });
          return;
        }
        // The engine's answer was cut (e.g. dockerd restarting): ask again, a little later each time.
        failures++;
        this.deps.log.warn({ err: e, containerId: id, failures }, "lost track of a training container; asking the engine again");
        await delay(Math.min(30_000, 500 * 2 ** failures));
      }
    }
  }

  private async exitFailure(open: OpenJob, round: number, exit: ContainerExit): Promise<TaskFailure> {
    await Promise.race([open.outputDone, delay(OUTPUT_SETTLE_MS)]);
    open.job.output.flush();
    let message = `trust ${this.deps.trustCode}: the workload exited with code ${exit.code} in round ${round}`;
    if (exit.oomKilled) message += ` (killed for going over the trust's memory limit of ${this.deps.policy.memoryMib} MiB, ${POLICY_VARS.memory})`;
    else if (exit.code === 0) message += " before pushing its update";
    const tail = open.job.output.tail();
    message += tail.length ? `; its last output: ${tail.join(" | ").slice(-1000)}` : "; its output is in the trust's task log";
    return new TaskFailure(TaskErrorCode.INVALID, message);
  }

  private sendLive(job: TrainingJob, ctx: TaskContext): void {
    job.output.flush();
    const report = job.reports.takeLive();
    if (report) ctx.report(report);
  }

  /** Runs an artifact transfer; a failure that is not the task's own cancellation is reported as retryable. */
  private async transfer(work: () => Promise<void>, signal: AbortSignal, what: string): Promise<void> {
    try {
      await work();
    } catch (e) {
      if (signal.aborted) throw e;
      this.deps.log.warn({ err: e, what }, "artifact transfer for training failed");
      throw new TaskFailure(TaskErrorCode.UNAVAILABLE, `trust ${this.deps.trustCode} could not transfer ${what}: ${e instanceof Error ? e.message : String(e)}`, true, { cause: e });
    }
  }

  private workspace(jobId: string): JobWorkspace | undefined {
    try {
      return new JobWorkspace(this.deps.dir, jobId);
    } catch {
      return undefined;
    }
  }

  private async workspaceIds(): Promise<string[]> {
    try {
      return (await readdir(this.deps.dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
