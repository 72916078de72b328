/**
 * The aggregating process of `npm run bench -- fedavg`: a process like the hub (the service V8 flags,
 * the hub's `federatedAverage`, its worker thread) that averages the given files `runs` times and prints
 * its timings, memory and event-loop delay as one JSON line. Its peak RSS is the kernel's high-water
 * mark (VmHWM).
 */
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { federatedAverage, type FedAvgInput } from "@flip/hub/training/fedavg/index.js";

export interface AggregatorJob {
  inputs: FedAvgInput[];
  outPath: string;
  runs: number;
  chunkBytes: number;
}

export interface AggregatorReport {
  seconds: number[];
  sha256: string;
  sizeBytes: number;
  /** Resident memory before the first average (the process with its modules loaded). */
  baseRssMb: number;
  peakRssMb: number;
  /** The longest this process's event loop was held up while averaging (the hub's links wait that long). */
  eventLoopDelayMaxMs: number;
}

function statusMb(field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

const job = JSON.parse(process.argv[2]!) as AggregatorJob;
const baseRssMb = statusMb("VmRSS");
const seconds: number[] = [];
// A 1 ms timer; its histogram holds whole intervals, so the lag is the excess over 1 ms.
const delay = monitorEventLoopDelay({ resolution: 1 });
let last = { sha256: "", sizeBytes: 0 };
for (let i = 0; i < job.runs; i++) {
  await rm(job.outPath, { force: true });
  const started = performance.now();
  delay.enable();
  last = await federatedAverage(job.inputs, job.outPath, { chunkBytes: job.chunkBytes });
  delay.disable();
  seconds.push((performance.now() - started) / 1000);
}
const report: AggregatorReport = { seconds, ...last, baseRssMb, peakRssMb: statusMb("VmHWM"), eventLoopDelayMaxMs: Math.max(0, delay.max / 1e6 - 1) };
process.stdout.write(`${JSON.stringify(report)}\n`);
// The idle worker is unref'd; nothing else keeps this process, but exit at once rather than wait for it.
process.exit(0);
