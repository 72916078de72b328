/**
 * Streaming FedAvg over safetensors files, in the calling thread (the worker in `worker.ts` calls it;
 * `federated-average.ts` is what the hub calls). Memory is a fixed set of chunk-sized buffers whatever
 * the model size and the number of inputs: the data sections are walked a chunk at a time, each input's
 * bytes for the chunk read with a positional read into an aligned buffer while the previous chunk is
 * averaged, and each averaged chunk hashed and written while the next is computed.
 */
import { createHash, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { decodeF16, encodeBf16, encodeF16 } from "./half-floats.js";
import { createKernels, type Kernels } from "./kernels.js";
import { DTYPE_BYTES, encodeSafetensorsHeader, FLOAT_DTYPES, readSafetensorsHeader, SafetensorsError, type Dtype, type SafetensorsHeader, type TensorInfo } from "@flip/shared/safetensors/safetensors.js";

export interface FedAvgInput {
  path: string;
  /** The update's sample count, > 0. */
  weight: number;
  /** Names the input in error messages (a trust code). */
  label: string;
}

export interface FedAvgResult {
  sizeBytes: number;
  tensors: number;
  sha256: string;
  totalWeight: number;
}

/** An update that cannot be averaged with the others: a tensor's name, dtype or shape differs, or its weight is not positive. */
export class IncompatibleUpdateError extends Error {
  override readonly name = "IncompatibleUpdateError";
  constructor(
    message: string,
    /** The input's label. */
    readonly input: string,
    readonly tensor?: string,
  ) {
    super(message);
  }
}

export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** Reads in flight while a chunk is averaged (the libuv pool has four threads). */
const READ_SLOTS = 4;
const OUT_SLOTS = 2;

/** A tensor's part of one chunk: bytes [at, at + bytes) of the chunk's buffers. */
interface Piece {
  dtype: Dtype;
  at: number;
  bytes: number;
}

/** Consecutive tensors laid out back to back, in the same order, in every input (normally the whole file). */
interface Run {
  /** Absolute file offset of the run in each input. */
  inputStart: number[];
  /** Offset of the run in the output's data section. */
  outStart: number;
  bytes: number;
  tensors: { dtype: Dtype; rel: number; bytes: number }[];
}

interface Chunk {
  run: Run;
  off: number;
  bytes: number;
  pieces: Piece[];
  /** Inputs to read for this chunk, in order: all of them when it holds floats to average, else the heaviest. */
  inputs: number[];
}

/**
 * Writes the weighted average of `inputs` to `outPath` (created or truncated). Float tensors are
 * Σ (wᵢ / Σw) · xᵢ in float64, written back in their dtype; integer and bool tensors are the heaviest
 * input's; a single input is copied. Tensors keep the first input's order and `__metadata__`.
 */
export async function averageSafetensorsFiles(inputs: readonly FedAvgInput[], outPath: string, opts: { chunkBytes?: number } = {}): Promise<FedAvgResult> {
  if (inputs.length === 0) throw new RangeError("FedAvg needs at least one input");
  const requestedChunk = Math.max(8, Math.ceil((opts.chunkBytes ?? DEFAULT_CHUNK_BYTES) / 8) * 8);
  for (const input of inputs) {
    if (!(Number.isFinite(input.weight) && input.weight > 0)) {
      throw new IncompatibleUpdateError(`update from ${input.label} has weight ${input.weight} (its sample count); FedAvg weights must be positive`, input.label);
    }
  }
  const headers = await Promise.all(
    inputs.map((input) =>
      readSafetensorsHeader(input.path).catch((e: unknown) => {
        if (e instanceof SafetensorsError) throw new SafetensorsError(`update from ${input.label}: ${e.message}`, { cause: e });
        throw e;
      }),
    ),
  );
  const order = checkCompatible(inputs, headers);
  const totalWeight = inputs.reduce((s, i) => s + i.weight, 0);
  let heaviest = 0;
  inputs.forEach((input, i) => input.weight > inputs[heaviest]!.weight && (heaviest = i));
  const out = encodeSafetensorsHeader(order, headers[0]!.metadata);
  const runs = planRuns(headers, order, out.tensors);
  // A model smaller than a chunk needs buffers only its size.
  const chunkBytes = Math.min(requestedChunk, Math.max(8, Math.ceil(runs.reduce((m, r) => Math.max(m, r.bytes), 0) / 8) * 8));
  const chunks = planChunks(runs, chunkBytes, inputs.length, heaviest);

  const layout = memoryLayout(chunkBytes);
  const k = takeKernels(layout.bytes);
  const handles: FileHandle[] = [];
  let outFh: FileHandle | undefined;
  try {
    for (const input of inputs) handles.push(await open(input.path, "r"));
    outFh = await open(outPath, "w");
    const hash = createHash("sha256").update(out.bytes);
    await writeFully(outFh, out.bytes, 0);
    await stream({ inputs, handles, outFh, hash, k, layout, chunks, totalWeight, heaviest, dataStart: out.bytes.length });
    return { sizeBytes: out.bytes.length + out.dataBytes, tensors: order.length, sha256: hash.digest("hex"), totalWeight };
  } finally {
    await Promise.allSettled([...handles, ...(outFh ? [outFh] : [])].map((fh) => fh.close()));
    releaseKernels(k);
  }
}

/** The first input's tensors in data order, after checking every other input has the same names, dtypes and shapes. */
function checkCompatible(inputs: readonly FedAvgInput[], headers: SafetensorsHeader[]): TensorInfo[] {
  const first = headers[0]!;
  const firstLabel = inputs[0]!.label;
  const byName = new Map(first.tensors.map((t) => [t.name, t]));
  headers.forEach((h, i) => {
    if (i === 0) return;
    const label = inputs[i]!.label;
    const mismatch = (tensor: string, what: string) => new IncompatibleUpdateError(`update from ${label} does not match update from ${firstLabel}: ${what}`, label, tensor);
    const seen = new Set<string>();
    for (const t of h.tensors) {
      const ref = byName.get(t.name);
      if (!ref) throw mismatch(t.name, `it has tensor "${t.name}", which the other does not`);
      if (t.dtype !== ref.dtype) throw mismatch(t.name, `tensor "${t.name}" is ${t.dtype}, not ${ref.dtype}`);
      if (t.shape.length !== ref.shape.length || t.shape.some((d, k) => d !== ref.shape[k])) {
        throw mismatch(t.name, `tensor "${t.name}" has shape [${t.shape.join(", ")}], not [${ref.shape.join(", ")}]`);
      }
      seen.add(t.name);
    }
    const missing = first.tensors.find((t) => !seen.has(t.name));
    if (missing) throw mismatch(missing.name, `it lacks tensor "${missing.name}"`);
  });
  return first.tensors;
}

/**
 * Splits the output's tensors into runs that are contiguous and in the same order in every input, and
 * where every float tensor sits at a multiple of its element size from the run's start (so typed views
 * over a chunk buffer that starts a run are aligned).
 */
function planRuns(headers: SafetensorsHeader[], order: TensorInfo[], laid: TensorInfo[]): Run[] {
  const perInput = headers.map((h) => new Map(h.tensors.map((t) => [t.name, t])));
  const runs: Run[] = [];
  let run: Run | undefined;
  order.forEach((t, k) => {
    const size = t.end - t.begin;
    const size0 = DTYPE_BYTES[t.dtype];
    const continues =
      run !== undefined &&
      (!FLOAT_DTYPES.has(t.dtype) || run.bytes % size0 === 0) &&
      perInput.every((m, i) => m.get(t.name)!.begin + headers[i]!.dataStart === run!.inputStart[i]! + run!.bytes);
    if (!continues) {
      run = { inputStart: perInput.map((m, i) => headers[i]!.dataStart + m.get(t.name)!.begin), outStart: laid[k]!.begin, bytes: 0, tensors: [] };
      runs.push(run);
    }
    run!.tensors.push({ dtype: t.dtype, rel: run!.bytes, bytes: size });
    run!.bytes += size;
  });
  return runs;
}

function planChunks(runs: Run[], chunkBytes: number, inputCount: number, heaviest: number): Chunk[] {
  const all = Array.from({ length: inputCount }, (_, i) => i);
  const chunks: Chunk[] = [];
  for (const run of runs) {
    let k = 0;
    for (let off = 0; off < run.bytes; off += chunkBytes) {
      const bytes = Math.min(chunkBytes, run.bytes - off);
      const pieces: Piece[] = [];
      while (k < run.tensors.length && run.tensors[k]!.rel + run.tensors[k]!.bytes <= off) k++;
      for (let j = k; j < run.tensors.length && run.tensors[j]!.rel < off + bytes; j++) {
        const t = run.tensors[j]!;
        const from = Math.max(t.rel, off);
        const to = Math.min(t.rel + t.bytes, off + bytes);
        if (to > from) pieces.push({ dtype: t.dtype, at: from - off, bytes: to - from });
      }
      const averages = inputCount > 1 && pieces.some((p) => FLOAT_DTYPES.has(p.dtype));
      chunks.push({ run, off, bytes, pieces, inputs: averages ? all : [heaviest] });
    }
  }
  return chunks;
}

/**
 * Byte offsets in the kernel memory: read slots, output slots, the float64 accumulator (a chunk of
 * 2-byte floats needs 4 bytes of it per input byte) and float32 scratch for widened 16-bit floats.
 */
interface MemoryLayout {
  chunkBytes: number;
  read: number;
  out: number;
  acc: number;
  scratch: number;
  bytes: number;
}

function memoryLayout(chunkBytes: number): MemoryLayout {
  const read = 0;
  const out = read + READ_SLOTS * chunkBytes;
  const acc = out + OUT_SLOTS * chunkBytes;
  const scratch = acc + 4 * chunkBytes;
  return { chunkBytes, read, out, acc, scratch, bytes: scratch + 2 * chunkBytes };
}

interface StreamState {
  inputs: readonly FedAvgInput[];
  handles: FileHandle[];
  outFh: FileHandle;
  hash: Hash;
  k: Kernels;
  layout: MemoryLayout;
  chunks: Chunk[];
  totalWeight: number;
  heaviest: number;
  dataStart: number;
}

/**
 * The pipeline: reads for the next few (chunk, input) pairs in flight on the libuv pool while this
 * thread averages the current one; a finished chunk is hashed here and written in the background while
 * the next is computed. (Hashing on a thread of its own was measured too: on the two cores this is
 * built for it gained nothing, since reads, sums and hash already keep both busy.)
 */
async function stream(s: StreamState): Promise<void> {
  const { chunks, inputs, k, layout } = s;
  const mem = new Uint8Array(k.memory.buffer);
  const readSlot = (slot: number) => layout.read + slot * layout.chunkBytes;
  const outSlot = (slot: number) => layout.out + slot * layout.chunkBytes;

  type Job = { chunk: number; input: number; last: boolean; slot: number; read: Promise<void> };
  const queue: Job[] = [];
  let issued = 0;
  const pairs = (function* () {
    for (let c = 0; c < chunks.length; c++) {
      const list = chunks[c]!.inputs;
      for (let j = 0; j < list.length; j++) yield { chunk: c, input: list[j]!, last: j === list.length - 1 };
    }
  })();
  const issue = () => {
    while (queue.length < READ_SLOTS) {
      const next = pairs.next();
      if (next.done) return;
      const { chunk, input } = next.value;
      const slot = issued++ % READ_SLOTS;
      const c = chunks[chunk]!;
      const read = readFully(s.handles[input]!, mem.subarray(readSlot(slot), readSlot(slot) + c.bytes), c.run.inputStart[input]! + c.off, inputs[input]!.label);
      read.catch(() => undefined);
      queue.push({ ...next.value, slot, read });
    }
  };
  const writes: Promise<void>[] = Array.from({ length: OUT_SLOTS }, () => Promise.resolve());
  try {
    issue();
    while (queue.length > 0) {
      const job = queue[0]!;
      const chunk = chunks[job.chunk]!;
      const out = outSlot(job.chunk % OUT_SLOTS);
      const first = job.input === chunk.inputs[0];
      if (first) await writes[job.chunk % OUT_SLOTS];
      await job.read;
      const src = readSlot(job.slot);
      const w = inputs[job.input]!.weight / s.totalWeight;
      let acc = layout.acc;
      for (const p of chunk.pieces) {
        if (chunk.inputs.length === 1 || !FLOAT_DTYPES.has(p.dtype)) {
          if (job.input === s.heaviest || chunk.inputs.length === 1) mem.copyWithin(out + p.at, src + p.at, src + p.at + p.bytes);
          continue;
        }
        acc = accumulate(k, mem, p, src + p.at, out + p.at, acc, layout.scratch, first, w);
      }
      queue.shift();
      issue();
      if (!job.last) continue;
      if (chunk.inputs.length > 1) {
        acc = layout.acc;
        for (const p of chunk.pieces) if (FLOAT_DTYPES.has(p.dtype)) acc = finish(k, p, out + p.at, acc);
      }
      const bytes = mem.subarray(out, out + chunk.bytes);
      s.hash.update(bytes);
      const written = writeFully(s.outFh, bytes, s.dataStart + chunk.run.outStart + chunk.off);
      written.catch(() => undefined);
      writes[job.chunk % OUT_SLOTS] = written;
    }
    await Promise.all(writes);
  } finally {
    // Reads and writes still in flight (after a failure) must end before the handles close.
    await Promise.allSettled([...queue.map((j) => j.read), ...writes]);
  }
}

/**
 * Kernel instances between averages in this thread: a fresh memory per round is external memory that
 * V8 collects with a full GC now and then, which cost small models' rounds 10 ms at times.
 */
const idleKernels: Kernels[] = [];

function takeKernels(bytes: number): Kernels {
  const at = idleKernels.findIndex((k) => k.memory.buffer.byteLength >= bytes);
  return at >= 0 ? idleKernels.splice(at, 1)[0]! : createKernels(bytes);
}

function releaseKernels(k: Kernels): void {
  if (idleKernels.length < 2) idleKernels.push(k);
}

/** Adds input bytes [src, src + p.bytes) into the accumulator at `acc`; returns the accumulator's next free byte. */
function accumulate(k: Kernels, mem: Uint8Array, p: Piece, src: number, out: number, acc: number, scratch: number, first: boolean, w: number): number {
  switch (p.dtype) {
    case "F64": {
      // The output slot is the accumulator: float64 in, float64 out.
      (first ? k.f64Init : k.f64Add)(out, src, p.bytes / 8, w);
      return acc;
    }
    case "F32": {
      const n = p.bytes / 4;
      (first ? k.f32Init : k.f32Add)(acc, src, n, w);
      return acc + n * 8;
    }
    case "BF16":
    case "F16": {
      const n = p.bytes / 2;
      if (p.dtype === "BF16") k.bf16Widen(scratch, src, n);
      else decodeF16(new Float32Array(mem.buffer, scratch, n), new Uint16Array(mem.buffer, src, n));
      (first ? k.f32Init : k.f32Add)(acc, scratch, n, w);
      return acc + n * 8;
    }
    default:
      throw new Error(`${p.dtype} is not a float dtype`);
  }
}

/** Writes the accumulated average of piece `p` into the output slot at `out`; returns the accumulator's next byte. */
function finish(k: Kernels, p: Piece, out: number, acc: number): number {
  const buffer = k.memory.buffer;
  switch (p.dtype) {
    case "F64":
      return acc;
    case "F32": {
      const n = p.bytes / 4;
      k.f32Demote(out, acc, n);
      return acc + n * 8;
    }
    case "BF16":
    case "F16": {
      const n = p.bytes / 2;
      (p.dtype === "BF16" ? encodeBf16 : encodeF16)(new Uint16Array(buffer, out, n), new Float64Array(buffer, acc, n));
      return acc + n * 8;
    }
    default:
      throw new Error(`${p.dtype} is not a float dtype`);
  }
}

async function readFully(fh: FileHandle, into: Uint8Array, position: number, label: string): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new SafetensorsError(`update from ${label}: the file ended at byte ${position + done}, before its data section did (was it changed while being averaged?)`);
    done += bytesRead;
  }
}

async function writeFully(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}
