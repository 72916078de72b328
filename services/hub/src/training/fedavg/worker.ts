/**
 * Worker-thread entry: averages one job at a time for `federated-average.ts`, off the event loop that
 * serves the hub's links and RPCs. Errors cross back as plain data and become their classes again there.
 */
import { parentPort } from "node:worker_threads";
import { averageSafetensorsFiles, IncompatibleUpdateError, type FedAvgInput, type FedAvgResult } from "./fedavg.js";
import { SafetensorsError } from "@flip/shared/safetensors/safetensors.js";

export interface AverageJob {
  inputs: FedAvgInput[];
  outPath: string;
  chunkBytes?: number;
}

export interface WireError {
  kind: "safetensors" | "incompatible" | "range" | "other";
  message: string;
  input?: string;
  tensor?: string;
  /** A system error's code (ENOENT, ENOSPC, …). */
  code?: string;
  stack?: string;
}

export type AverageReply = { ok: true; result: FedAvgResult } | { ok: false; error: WireError };

function toWire(e: unknown): WireError {
  if (e instanceof SafetensorsError) return { kind: "safetensors", message: e.message };
  if (e instanceof IncompatibleUpdateError) return { kind: "incompatible", message: e.message, input: e.input, ...(e.tensor !== undefined && { tensor: e.tensor }) };
  if (e instanceof RangeError) return { kind: "range", message: e.message };
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as NodeJS.ErrnoException).code;
  return { kind: "other", message: err.message, ...(code !== undefined && { code }), ...(err.stack !== undefined && { stack: err.stack }) };
}

const port = parentPort;
if (!port) throw new Error("fedavg/worker.ts runs as a worker thread");
port.on("message", (job: AverageJob) => {
  averageSafetensorsFiles(job.inputs, job.outPath, job.chunkBytes === undefined ? {} : { chunkBytes: job.chunkBytes }).then(
    (result) => port.postMessage({ ok: true, result } satisfies AverageReply),
    (e: unknown) => port.postMessage({ ok: false, error: toWire(e) } satisfies AverageReply),
  );
});
