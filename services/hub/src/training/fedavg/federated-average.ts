/**
 * `federatedAverage`: what the hub calls to average a round. The work runs in a worker thread (kept
 * for the next round while it idles, so a small model's round does not pay a thread start), writes
 * `outPath + ".part"` and renames it once the result is complete.
 */
import { rename, rm } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { IncompatibleUpdateError, type FedAvgInput, type FedAvgResult } from "./fedavg.js";
import { SafetensorsError } from "@flip/shared/safetensors/safetensors.js";
import type { AverageJob, AverageReply, WireError } from "./worker.js";

/** An idle worker is ended after this long; the next round starts a new one (tens of milliseconds). */
const IDLE_MS = 60_000;
const MAX_IDLE_WORKERS = 2;

/** Weighted average of safetensors files into outPath, in a worker thread, streaming. */
export async function federatedAverage(inputs: FedAvgInput[], outPath: string, opts: { signal?: AbortSignal; chunkBytes?: number } = {}): Promise<FedAvgResult> {
  opts.signal?.throwIfAborted();
  const part = `${outPath}.part`;
  const worker = idle.pop() ?? new AveragingWorker();
  try {
    const job: AverageJob = { inputs: inputs.map(({ path, weight, label }) => ({ path, weight, label })), outPath: part };
    if (opts.chunkBytes !== undefined) job.chunkBytes = opts.chunkBytes;
    const result = await worker.run(job, opts.signal);
    opts.signal?.throwIfAborted();
    await rename(part, outPath);
    return result;
  } catch (e) {
    await rm(part, { force: true });
    throw e;
  } finally {
    worker.release();
  }
}

const idle: AveragingWorker[] = [];

class AveragingWorker {
  private readonly worker: Worker;
  private pending: { resolve: (r: FedAvgResult) => void; reject: (e: unknown) => void } | undefined;
  private dead = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor() {
    // worker.ts from source (under tsx), worker.js when built.
    const entry = new URL(`./worker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url);
    this.worker = new Worker(entry, { execArgv: workerExecArgv(process.execArgv) });
    this.worker.on("message", (reply: AverageReply) => {
      const p = this.pending;
      this.pending = undefined;
      if (reply.ok) p?.resolve(reply.result);
      else p?.reject(fromWire(reply.error));
    });
    this.worker.on("error", (e) => this.fail(e));
    this.worker.on("exit", (code) => this.fail(new Error(`the FedAvg worker exited (code ${code})`)));
  }

  run(job: AverageJob, signal: AbortSignal | undefined): Promise<FedAvgResult> {
    clearTimeout(this.idleTimer);
    this.worker.ref();
    return new Promise<FedAvgResult>((resolve, reject) => {
      const onAbort = () => {
        // Stopping the thread is the only way to stop a computation mid-chunk; its files close with it.
        this.dead = true;
        this.pending = undefined;
        this.worker.terminate().then(() => reject(signal!.reason), reject);
      };
      this.pending = {
        resolve: (r) => (signal?.removeEventListener("abort", onAbort), resolve(r)),
        reject: (e) => (signal?.removeEventListener("abort", onAbort), reject(e)),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.worker.postMessage(job);
    });
  }

  /** Back to the idle list when it can take another job, else ended. */
  release(): void {
    if (this.dead || this.pending) return;
    if (idle.length >= MAX_IDLE_WORKERS) {
      this.dead = true;
      void this.worker.terminate();
      return;
    }
    this.worker.unref();
    this.idleTimer = setTimeout(() => {
      idle.splice(idle.indexOf(this), 1);
      this.dead = true;
      void this.worker.terminate();
    }, IDLE_MS);
    this.idleTimer.unref();
    idle.push(this);
  }

  private fail(e: unknown): void {
    this.dead = true;
    clearTimeout(this.idleTimer);
    const at = idle.indexOf(this);
    if (at >= 0) idle.splice(at, 1);
    const p = this.pending;
    this.pending = undefined;
    p?.reject(e);
  }
}

function fromWire(e: WireError): Error {
  switch (e.kind) {
    case "safetensors":
      return new SafetensorsError(e.message);
    case "incompatible":
      return new IncompatibleUpdateError(e.message, e.input ?? "", e.tensor);
    case "range":
      return new RangeError(e.message);
    default: {
      const err = Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code });
      if (e.stack !== undefined) err.stack = e.stack;
      return err;
    }
  }
}

/**
 * The worker's Node options: only the TypeScript loader of this process's preloads. Service processes
 * also preload telemetry, which would start a second SDK inside the worker; V8 flags are process-wide
 * and a worker refuses them.
 */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const isTsx = (v: string | undefined) => v !== undefined && (/^tsx(\/|$)/.test(v) || /[\\/]node_modules[\\/]tsx[\\/]/.test(v));
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const joined = /^--(import|require|loader|experimental-loader)=(.*)$/.exec(arg);
    if (joined) {
      if (isTsx(joined[2])) out.push(arg);
    } else if (["--import", "--require", "-r", "--loader", "--experimental-loader"].includes(arg)) {
      const value = execArgv[++i];
      if (isTsx(value)) out.push(arg, value!);
    }
  }
  return out;
}
