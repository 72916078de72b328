import { randomBytes } from "node:crypto";
import { open, rename, rm, stat } from "node:fs/promises";
import { readSafetensorsHeader, SafetensorsError } from "@flip/shared/safetensors/safetensors.js";
import type { ReportBuffer } from "./reports.js";
import type { WorkloadOutput } from "./workload-output.js";
import type { JobSettings, JobWorkspace, RoundDone } from "./workspace.js";

/** The job ended at the trust (STOP): nothing more to train. */
export class JobEndedError extends Error {
  override readonly name = "JobEndedError";
}

/** The call is not allowed in the round's state (already pushed, closed, or an evaluation). */
export class RoundClosedError extends Error {
  override readonly name = "RoundClosedError";
}

/** The workload's request cannot be taken as it is (round not started, malformed update, bad count). */
export class UpdateRejectedError extends Error {
  override readonly name = "UpdateRejectedError";
}

/** How the job's current container ended. */
export interface ContainerExit {
  code: number;
  oomKilled: boolean;
}

/** The container running the job's workload, as the gateway follows it. */
export interface WorkloadContainer {
  id: string;
  /** Set when it exited. */
  exit?: ContainerExit;
}

/** What GetGlobalWeights answers: a round to train (with its weights file, if any), or the end of the job. */
export type NextRound = { done: true } | { done: false; round: number; weightsFile: string | undefined; traceContext: Record<string, string> };

/** How a round ended for the round task. */
export type RoundOutcome = { kind: "done"; result: RoundDone } | { kind: "exited"; exit: ContainerExit };

export interface TrainingJobDeps {
  workspace: JobWorkspace;
  reports: ReportBuffer;
  /** Created by the job's owner with the job (it reads the job's round). */
  output: (job: TrainingJob) => WorkloadOutput;
  maxUpdateBytes: number;
}

/**
 * One training job at this trust: its settings, the round it is on, what the workload finished, and
 * waiting for all of that. The runtime API and the round tasks meet here; neither knows the other.
 * State that a restarted gateway needs (round, rounds done, token) is on the disk of the workspace.
 */
export class TrainingJob {
  settings: JobSettings;
  round: number;
  private roundHasWeights: boolean;
  /** W3C trace context of the span running the current round here: the workload's calls for the round continue it. */
  roundTraceContext: Record<string, string> = {};
  done = false;
  readonly workspace: JobWorkspace;
  readonly reports: ReportBuffer;
  readonly output: WorkloadOutput;
  readonly token: string;
  container: WorkloadContainer | undefined;
  /** The task working on the job now (round or STOP), for log entries. */
  task: { taskId: string; attempt: number } | undefined;
  /** Tasks running for the job; an idle job's container may be reaped only when none is. */
  busy = 0;
  lastTouched = Date.now();
  private readonly roundsDone: Map<number, RoundDone>;
  /** The last round whose weights an evaluation workload received (it asks again when it finished). */
  private deliveredRound = 0;
  private pushing = false;
  private readonly listeners = new Set<() => void>();
  private readonly maxUpdateBytes: number;

  private constructor(deps: TrainingJobDeps, settings: JobSettings, token: string, round: number, roundHasWeights: boolean, roundsDone: Map<number, RoundDone>) {
    this.workspace = deps.workspace;
    this.reports = deps.reports;
    this.settings = settings;
    this.token = token;
    this.round = round;
    this.roundHasWeights = roundHasWeights;
    this.roundsDone = roundsDone;
    this.maxUpdateBytes = deps.maxUpdateBytes;
    this.output = deps.output(this);
  }

  /** Opens the job in its workspace: restores what an earlier gateway recorded, or starts at round 0 with `settings`. */
  static async open(deps: TrainingJobDeps, settings: JobSettings | undefined): Promise<TrainingJob> {
    await deps.workspace.ensure();
    const state = await deps.workspace.readState();
    const chosen = settings ?? state?.settings;
    if (!chosen) throw new Error(`job ${deps.workspace.jobId} has no recorded settings`);
    const job = new TrainingJob(deps, chosen, await deps.workspace.token(), state?.round ?? 0, state?.roundHasWeights ?? false, await deps.workspace.roundsDone());
    if (!state || settings) await job.persist();
    return job;
  }

  /** Makes `round` current (its weights, if any, already in place, its trace that of `traceContext`): runtime calls now see it. */
  async openRound(round: number, hasWeights: boolean, settings: JobSettings, traceContext: Record<string, string> = {}): Promise<void> {
    this.settings = settings;
    this.round = round;
    this.roundHasWeights = hasWeights;
    this.roundTraceContext = traceContext;
    await this.persist();
    this.changed();
  }

  /** What the workload finished for `round`, if it did. */
  roundResult(round: number): RoundDone | undefined {
    return this.roundsDone.get(round);
  }

  /** Rounds the workload finished in this job so far. */
  roundsCompleted(): number {
    return this.roundsDone.size;
  }

  /** The job ended: waiting calls answer `done`, and no round opens again. */
  end(): void {
    this.done = true;
    this.changed();
  }

  /** A new container runs the workload: it starts from the round's weights, whatever its predecessor received. */
  containerStarted(container: WorkloadContainer): void {
    this.container = container;
    this.deliveredRound = 0;
    this.changed();
  }

  containerExited(id: string, exit: ContainerExit): void {
    if (this.container?.id !== id) return;
    this.container.exit = exit;
    this.changed();
  }

  /**
   * The round a workload should train next and its weights, waiting until the hub opens it. `requested`
   * 0 means whichever round the trust is on and the workload has not finished. An evaluation workload
   * that asks again after receiving a round's weights has finished that round.
   */
  async nextRound(requested: number, signal: AbortSignal): Promise<NextRound> {
    return await this.waitFor(signal, async () => {
      if (this.done) return { done: true };
      if (requested !== 0 && requested < this.round) throw new RoundClosedError(`round ${requested} is over: the trust is on round ${this.round} (ask for round 0 to get the current one)`);
      if (this.settings.evaluate && this.round > 0 && this.deliveredRound === this.round && (requested === 0 || requested > this.round)) {
        await this.finishRound(this.round, { samples: 0n, evaluated: true });
        return undefined;
      }
      const current = this.round > 0 && (requested === this.round || (requested === 0 && !this.roundsDone.has(this.round)));
      if (!current) return undefined;
      this.deliveredRound = this.round;
      return { done: false, round: this.round, weightsFile: this.roundHasWeights ? this.workspace.weightsPath(this.round) : undefined, traceContext: this.roundTraceContext };
    });
  }

  /**
   * Takes a workload's update for `round`: written to a temporary file as it arrives (at most the
   * policy's size), checked as safetensors, synced and renamed into place, and recorded as the round's
   * result, all before this returns its size: what was acknowledged survives a crash.
   */
  async pushUpdate(round: number, samples: bigint, data: AsyncIterable<Uint8Array>): Promise<number> {
    this.checkPushable(round);
    if (this.pushing) throw new RoundClosedError(`an update for round ${round} is being received already`);
    if (samples <= 0n) throw new UpdateRejectedError("sample_count must be at least 1 on the first message: it weighs the update in the average");
    this.pushing = true;
    const part = `${this.workspace.updatePath(round)}.part-${randomBytes(4).toString("hex")}`;
    try {
      const size = await this.receive(part, data);
      try {
        if ((await readSafetensorsHeader(part)).tensors.length === 0) throw new SafetensorsError("it holds no tensors");
      } catch (e) {
        if (e instanceof SafetensorsError) throw new UpdateRejectedError(`the update for round ${round} is not a valid safetensors file: ${e.message}`, { cause: e });
        throw e;
      }
      // The job may have moved on (STOP, or a new round) while the bytes arrived.
      this.checkPushable(round);
      await rename(part, this.workspace.updatePath(round));
      await this.finishRound(round, { samples, evaluated: false });
      return size;
    } finally {
      this.pushing = false;
      await rm(part, { force: true });
    }
  }

  /** Resolves when the workload finished `round` or its container exited; rejects when `signal` fires. */
  async waitForRound(round: number, signal: AbortSignal): Promise<RoundOutcome> {
    return await this.waitFor(signal, () => {
      const result = this.roundsDone.get(round);
      if (result) return { kind: "done", result };
      const exit = this.container?.exit;
      return exit ? { kind: "exited", exit } : undefined;
    });
  }

  /** Resolves when the current container exited (at once when there is none); rejects when `signal` fires. */
  async waitForExit(signal: AbortSignal): Promise<void> {
    await this.waitFor(signal, () => (!this.container || this.container.exit ? true : undefined));
  }

  /** Records that the workload finished `round` (an evaluation that ended with exit 0, or an update just persisted). */
  async finishRound(round: number, result: RoundDone): Promise<void> {
    if (this.roundsDone.has(round)) return;
    await this.workspace.markRoundDone(round, result);
    this.roundsDone.set(round, result);
    this.changed();
  }

  /** Resolves with the first defined value of `check`, run now and after every change; rejects with the signal's reason. */
  private async waitFor<T>(signal: AbortSignal, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
    for (;;) {
      signal.throwIfAborted();
      // Listen before checking, so a change during an async check is not missed.
      let wake!: () => void;
      const changed = new Promise<void>((resolve) => (wake = resolve));
      this.listeners.add(wake);
      const onAbort = () => wake();
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        const value = await check();
        if (value !== undefined) return value;
        await changed;
      } finally {
        this.listeners.delete(wake);
        signal.removeEventListener("abort", onAbort);
      }
    }
  }

  private changed(): void {
    for (const wake of [...this.listeners]) wake();
  }

  private checkPushable(round: number): void {
    if (this.done) throw new JobEndedError("the job has ended at this trust; no more updates are taken");
    if (this.settings.evaluate) throw new RoundClosedError("this is an evaluation job: it pushes no updates (report metrics instead)");
    if (this.roundsDone.has(round)) throw new RoundClosedError(`round ${round}'s update was already received; wait for the next round (GetGlobalWeights)`);
    if (round !== this.round || round === 0) {
      if (round < this.round) throw new RoundClosedError(`round ${round} is over: the trust is on round ${this.round}`);
      throw new UpdateRejectedError(`round ${round} has not started at this trust (it is on round ${this.round}); push the round GetGlobalWeights returned`);
    }
  }

  private async receive(part: string, data: AsyncIterable<Uint8Array>): Promise<number> {
    const fh = await open(part, "wx", 0o600);
    let size = 0;
    try {
      for await (const chunk of data) {
        size += chunk.byteLength;
        if (size > this.maxUpdateBytes) throw new UpdateRejectedError(`the update is larger than the ${this.maxUpdateBytes} bytes this trust accepts`);
        if (chunk.byteLength > 0) await fh.write(chunk);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    if ((await stat(part)).size !== size) throw new Error("the update file does not hold the bytes received");
    return size;
  }

  private async persist(): Promise<void> {
    await this.workspace.writeState({ settings: this.settings, round: this.round, roundHasWeights: this.roundHasWeights });
  }
}
