/**
 * `npm run bench -- fedavg [--trusts 2,10,50] [--model-mb 100] [--runs 3] [--chunk-kib 1024] [--json]`
 *
 * The hub's FedAvg over N updates of one float32 model (safetensors files on disk, written beforehand;
 * just written, so in the page cache as a round's fresh uploads are), side by side with two floors:
 * - memcpy: the same number of bytes copied buffer to buffer in the same chunk size, from a model-sized
 *   buffer (so from memory, as reads from the page cache are);
 * - read: the input files read in the same chunk size and nothing else.
 * The average runs in a child process started like the hub (its V8 flags, `federatedAverage`, the
 * worker thread), `--runs` times; the median counts (the first includes starting the worker). Its
 * peak RSS is the kernel's high-water mark for that process (VmHWM), across all runs, and its event
 * loop's longest delay while averaging shows the work stays off it.
 * Throughput and ratios count input bytes (N × model); MB is 10^6 bytes, RSS MB 2^20.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { mkdir, open, rm, statfs } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { encodeSafetensorsHeader, type Dtype } from "@flip/hub/training/fedavg/index.js";
import { SERVICE_NODE_FLAGS } from "@flip/shared/process/service-node-flags.js";
import type { AggregatorJob, AggregatorReport } from "./fedavg-aggregator.js";

const root = path.resolve(import.meta.dirname, "../../..");
const MB = 1_000_000;
const progress = (msg: string) => process.stderr.write(`[bench fedavg] ${msg}\n`);
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Result {
  benchmark: "fedavg";
  trusts: number;
  model_mb: number;
  seconds: number;
  mb_per_s: number;
  memcpy_mb_per_s: number;
  read_mb_per_s: number;
  ratio_to_memcpy: number;
  ratio_to_read: number;
  peak_rss_mb: number;
  base_rss_mb: number;
  target_rss_mb: number;
  event_loop_delay_max_ms: number;
  runs_s: number[];
  chunk_kib: number;
  machine: { cpus: number; cpu: string; memory_gb: number; node: string };
}

interface Skipped {
  benchmark: "fedavg";
  trusts: number;
  model_mb: number;
  skipped: string;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      trusts: { type: "string", default: "2,10,50" },
      "model-mb": { type: "string", default: "100" },
      runs: { type: "string", default: "3" },
      "chunk-kib": { type: "string", default: "1024" },
      json: { type: "boolean", default: false },
    },
  });
  const trustCounts = values.trusts.split(",").map(Number);
  const modelMb = Number(values["model-mb"]);
  const runs = Number(values.runs);
  const chunkBytes = Number(values["chunk-kib"]) * 1024;
  if (!trustCounts.every((n) => Number.isInteger(n) && n >= 1 && n <= 1000) || !(modelMb > 0 && modelMb <= 10_000) || !(Number.isInteger(runs) && runs >= 1) || !(chunkBytes >= 8)) {
    process.stderr.write("usage: npm run bench -- fedavg [--trusts 2,10,50] [--model-mb 100 (MB of float32)] [--runs 3] [--chunk-kib 1024] [--json]\n");
    return 2;
  }

  const dir = path.join(root, ".tmp", `bench-fedavg-${process.pid}`);
  await mkdir(dir, { recursive: true });
  try {
    const model = modelLayout(modelMb * MB);
    const header = encodeSafetensorsHeader(model);
    const fileBytes = header.bytes.length + header.dataBytes;
    // Disk: the largest count that fits with one output and a margin; larger counts are skipped.
    const { bavail, bsize } = await statfs(dir);
    const free = bavail * bsize;
    const fits = (n: number) => (n + 1) * fileBytes + 256 * MB <= free;
    const feasible = trustCounts.filter(fits);
    const most = Math.max(0, ...feasible);
    if (most * fileBytes > 0.8 * os.totalmem()) progress(`warning: ${round((most * fileBytes) / 1e9)} GB of updates will not all stay in the page cache (${round(os.totalmem() / 1e9)} GB of memory); reads will hit the disk`);

    if (most > 0) progress(`writing ${most} updates of ${round(fileBytes / MB)} MB (${model.length} tensors) in ${dir}`);
    const data = most > 0 ? randomFloats(header.dataBytes) : Buffer.alloc(0);
    const inputs: { path: string; weight: number; label: string; rotation: number }[] = [];
    for (let i = 0; i < most; i++) {
      // Each update is the same values rotated by its own number of elements, so they differ and the
      // result can be checked against the one buffer.
      const rotation = ((i * 1_048_583) % Math.max(1, header.dataBytes / 4)) * 4;
      const file = path.join(dir, `update-${i}.safetensors`);
      await writeRotated(file, header.bytes, data, rotation);
      inputs.push({ path: file, weight: 100 + i, label: `t${i}`, rotation });
    }

    const results: (Result | Skipped)[] = [];
    for (const trusts of trustCounts) {
      if (!fits(trusts)) {
        const skipped = `needs ${round(((trusts + 1) * fileBytes + 256 * MB) / 1e9, 2)} GB of free disk in ${path.dirname(dir)}, ${round(free / 1e9, 2)} GB free`;
        progress(`skipping ${trusts} trusts: ${skipped}`);
        results.push({ benchmark: "fedavg", trusts, model_mb: round(header.dataBytes / MB), skipped });
        if (values.json) process.stdout.write(`${JSON.stringify(results.at(-1))}\n`);
        continue;
      }
      const chosen = inputs.slice(0, trusts);
      const inputBytes = trusts * fileBytes;
      progress(`${trusts} trusts: memcpy and read floors`);
      const memcpyS = memcpySeconds(data, trusts * (fileBytes / header.dataBytes), chunkBytes);
      const readS = readSeconds(chosen.map((i) => i.path), chunkBytes);
      progress(`${trusts} trusts: averaging ${round(inputBytes / MB)} MB in the aggregating process, ${runs} runs`);
      const out = path.join(dir, "global.safetensors");
      const report = await aggregate({ inputs: chosen.map(({ path: p, weight, label }) => ({ path: p, weight, label })), outPath: out, runs, chunkBytes });
      await spotCheck(out, header.bytes.length, data, chosen);
      await rm(out, { force: true });
      const seconds = median(report.seconds);
      const result: Result = {
        benchmark: "fedavg",
        trusts,
        model_mb: round(header.dataBytes / MB),
        seconds: round(seconds, 3),
        mb_per_s: round(inputBytes / MB / seconds),
        memcpy_mb_per_s: round(inputBytes / MB / memcpyS),
        read_mb_per_s: round(inputBytes / MB / readS),
        ratio_to_memcpy: round(memcpyS / seconds, 3),
        ratio_to_read: round(readS / seconds, 3),
        peak_rss_mb: round(report.peakRssMb),
        base_rss_mb: round(report.baseRssMb),
        target_rss_mb: round((2 * fileBytes) / 2 ** 20 + 150),
        event_loop_delay_max_ms: round(report.eventLoopDelayMaxMs),
        runs_s: report.seconds.map((s) => round(s, 3)),
        chunk_kib: chunkBytes / 1024,
        machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? "", memory_gb: round(os.totalmem() / 2 ** 30), node: process.version },
      };
      results.push(result);
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    }
    if (!values.json) printTable(results);
    return 0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Layers of a 1,000-wide network in float32, with a BatchNorm step counter (int64) per layer, ≈ `bytes`. */
function modelLayout(bytes: number): { name: string; dtype: Dtype; shape: number[] }[] {
  const layers = Math.max(1, Math.round(bytes / (4 * MB)));
  const rows = Math.max(1, Math.round((bytes / layers - 4_008) / 4_000));
  return Array.from({ length: layers }, (_, i) => [
    { name: `layers.${i}.weight`, dtype: "F32" as const, shape: [rows, 1000] },
    { name: `layers.${i}.bias`, dtype: "F32" as const, shape: [1000] },
    { name: `layers.${i}.bn.num_batches_tracked`, dtype: "I64" as const, shape: [] },
  ]).flat();
}

/** Random float32 values in [-1, 1) filling `bytes` (int64 tensors get float bits too: they are only copied). */
function randomFloats(bytes: number): Buffer {
  const buf = Buffer.alloc(bytes);
  const f = new Float32Array(buf.buffer, buf.byteOffset, bytes / 4);
  const seed = randomBytes(4).readUInt32LE(0);
  let s = seed;
  for (let i = 0; i < f.length; i++) {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    f[i] = s / 2 ** 31 - 1;
  }
  return buf;
}

async function writeRotated(file: string, header: Buffer, data: Buffer, rotation: number): Promise<void> {
  const fh = await open(file, "w");
  try {
    await fh.write(header, 0, header.length, 0);
    await fh.write(data, rotation, data.length - rotation, header.length);
    if (rotation > 0) await fh.write(data, 0, rotation, header.length + data.length - rotation);
    // On disk before measuring: gigabytes of dirty pages being written back would slow what follows.
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Seconds to copy `times` × the buffer into a chunk-sized buffer, chunk by chunk (best of two, after a warm-up pass). */
function memcpySeconds(src: Buffer, times: number, chunkBytes: number): number {
  const dst = Buffer.allocUnsafe(chunkBytes);
  const pass = (n: number) => {
    const started = performance.now();
    const whole = Math.floor(n);
    for (let t = 0; t < n; t++) {
      const end = t < whole ? src.length : Math.floor(src.length * (n - whole));
      for (let off = 0; off < end; off += chunkBytes) src.copy(dst, 0, off, Math.min(off + chunkBytes, end));
    }
    return (performance.now() - started) / 1000;
  };
  pass(1);
  return Math.min(pass(times), pass(times));
}

/** Seconds to read the files through in chunks (positional reads into one buffer), best of two. */
function readSeconds(files: string[], chunkBytes: number): number {
  const buf = Buffer.allocUnsafe(chunkBytes);
  const pass = () => {
    const started = performance.now();
    for (const file of files) {
      const fd = openSync(file, "r");
      try {
        for (let at = 0, n = 0; (n = readSync(fd, buf, 0, chunkBytes, at)) > 0; at += n);
      } finally {
        closeSync(fd);
      }
    }
    return (performance.now() - started) / 1000;
  };
  return Math.min(pass(), pass());
}

function aggregate(job: AggregatorJob): Promise<AggregatorReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, "--import", "tsx", path.join(import.meta.dirname, "fedavg-aggregator.ts"), JSON.stringify(job)], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`the aggregating process exited with code ${code}`));
      try {
        resolve(JSON.parse(out) as AggregatorReport);
      } catch (e) {
        reject(new Error(`the aggregating process printed no report: ${out}`, { cause: e }));
      }
    });
  });
}

/** Checks 1,000 float32 values of the output against Σ (wᵢ / Σw) · xᵢ from the source buffer. */
async function spotCheck(out: string, dataStart: number, data: Buffer, inputs: { weight: number; rotation: number }[]): Promise<void> {
  const total = inputs.reduce((s, i) => s + i.weight, 0);
  const fh = await open(out, "r");
  try {
    const got = Buffer.alloc(4);
    for (let k = 0; k < 1000; k++) {
      // Layer weights start each layer; any element of the first 90% of the data is in one.
      const at = Math.floor((Math.random() * 0.9 * data.length) / 4) * 4;
      if (!isFloatOffset(at, data.length)) continue;
      let acc = 0;
      inputs.forEach((input, i) => {
        const term = (input.weight / total) * data.readFloatLE((at + input.rotation) % data.length);
        acc = i === 0 ? term : acc + term;
      });
      await fh.read(got, 0, 4, dataStart + at);
      if (got.readFloatLE(0) !== Math.fround(acc)) throw new Error(`the average is wrong at data byte ${at}: ${got.readFloatLE(0)}, expected ${Math.fround(acc)}`);
    }
  } finally {
    await fh.close();
  }
}

/** Whether a data offset is in a float32 tensor of `modelLayout` (each layer ends with its 8-byte counter). */
function isFloatOffset(at: number, dataBytes: number): boolean {
  const layers = Math.max(1, Math.round(dataBytes / (4 * MB)));
  const layerBytes = dataBytes / layers;
  return at % layerBytes < layerBytes - 8;
}

function printTable(results: (Result | Skipped)[]): void {
  process.stdout.write("trusts  model MB  seconds  MB/s    memcpy MB/s  read MB/s  ratio to memcpy  peak RSS MB (target)  loop delay max ms\n");
  for (const r of results) {
    if ("skipped" in r) {
      process.stdout.write(`${String(r.trusts).padStart(6)}  ${String(r.model_mb).padStart(8)}  skipped: ${r.skipped}\n`);
      continue;
    }
    process.stdout.write(
      `${String(r.trusts).padStart(6)}  ${String(r.model_mb).padStart(8)}  ${r.seconds.toFixed(3).padStart(7)}  ${String(r.mb_per_s).padStart(6)}  ${String(r.memcpy_mb_per_s).padStart(11)}  ${String(r.read_mb_per_s).padStart(9)}  ${r.ratio_to_memcpy.toFixed(3).padStart(15)}  ${`${r.peak_rss_mb} (${r.target_rss_mb})`.padEnd(20)}  ${r.event_loop_delay_max_ms}\n`,
    );
  }
}
