import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { averageSafetensorsFiles, IncompatibleUpdateError, type FedAvgInput } from "./fedavg.js";
import { federatedAverage, workerExecArgv } from "./federated-average.js";
import { bf16ToNumber, f16ToNumber, numberToBf16, numberToF16 } from "./half-floats.js";
import { DTYPE_BYTES, FLOAT_DTYPES, parseSafetensorsHeader, SafetensorsError, serializeSafetensors, type Dtype } from "@flip/shared/safetensors/safetensors.js";

interface Tensor {
  name: string;
  dtype: Dtype;
  shape: number[];
  data: Uint8Array;
}

let dir: string;
test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "flip-fedavg-"));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
async function writeUpdate(tensors: Tensor[], metadata?: Record<string, string>): Promise<string> {
  const file = path.join(dir, `update-${files++}.safetensors`);
  await writeFile(file, serializeSafetensors(tensors, metadata));
  return file;
}

const bytesOf = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
const t32 = (name: string, shape: number[], values: number[]): Tensor => ({ name, dtype: "F32", shape, data: bytesOf(new Float32Array(values)) });
const t64 = (name: string, shape: number[], values: number[]): Tensor => ({ name, dtype: "F64", shape, data: bytesOf(new Float64Array(values)) });

/** A seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A tensor of random finite values (or bytes, for integers). */
function randomTensor(rand: () => number, name: string, dtype: Dtype, shape: number[]): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const data = new Uint8Array(n * DTYPE_BYTES[dtype]);
  const view = new DataView(data.buffer);
  for (let i = 0; i < n; i++) {
    const x = (rand() - 0.5) * 2 ** Math.floor(rand() * 16 - 8);
    if (dtype === "F32") view.setFloat32(i * 4, x, true);
    else if (dtype === "F64") view.setFloat64(i * 8, x, true);
    else if (dtype === "F16") view.setUint16(i * 2, numberToF16(x), true);
    else if (dtype === "BF16") view.setUint16(i * 2, numberToBf16(x), true);
    else for (let b = 0; b < DTYPE_BYTES[dtype]; b++) data[i * DTYPE_BYTES[dtype] + b] = dtype === "BOOL" ? (rand() < 0.5 ? 1 : 0) : Math.floor(rand() * 256);
  }
  return { name, dtype, shape, data };
}

/**
 * FedAvg computed the obvious way with everything in memory: Σ (wᵢ / Σw) · xᵢ in float64 in input order,
 * rounded to the dtype; integer tensors from the first heaviest input; one input copied.
 */
function reference(updates: { tensors: Tensor[]; weight: number }[]): Map<string, Uint8Array> {
  const total = updates.reduce((s, u) => s + u.weight, 0);
  const heaviest = updates.reduce((h, u, i) => (u.weight > updates[h]!.weight ? i : h), 0);
  const out = new Map<string, Uint8Array>();
  for (const first of updates[0]!.tensors) {
    const inputs = updates.map((u) => u.tensors.find((t) => t.name === first.name)!);
    if (updates.length === 1 || !FLOAT_DTYPES.has(first.dtype)) {
      out.set(first.name, inputs[heaviest]!.data.slice());
      continue;
    }
    const size = DTYPE_BYTES[first.dtype];
    const n = first.data.length / size;
    const result = new Uint8Array(first.data.length);
    const w = new DataView(result.buffer);
    for (let e = 0; e < n; e++) {
      let acc = 0;
      inputs.forEach((t, i) => {
        const v = new DataView(t.data.buffer, t.data.byteOffset);
        const x =
          first.dtype === "F32" ? v.getFloat32(e * 4, true) : first.dtype === "F64" ? v.getFloat64(e * 8, true) : first.dtype === "F16" ? f16ToNumber(v.getUint16(e * 2, true)) : bf16ToNumber(v.getUint16(e * 2, true));
        const term = (updates[i]!.weight / total) * x;
        acc = i === 0 ? term : acc + term;
      });
      if (first.dtype === "F32") w.setFloat32(e * 4, acc, true);
      else if (first.dtype === "F64") w.setFloat64(e * 8, acc, true);
      else if (first.dtype === "F16") w.setUint16(e * 2, numberToF16(acc), true);
      else w.setUint16(e * 2, numberToBf16(acc), true);
    }
    out.set(first.name, result);
  }
  return out;
}

/** The output's tensors by name, after checking the file is valid and its hash and size are what was reported. */
async function readOutput(file: string, result: { sha256: string; sizeBytes: number }): Promise<{ order: string[]; metadata: Record<string, string> | undefined; data: Map<string, Uint8Array> }> {
  const bytes = await readFile(file);
  const header = parseSafetensorsHeader(bytes);
  if (createHash("sha256").update(bytes).digest("hex") !== result.sha256) throw new Error("the reported sha256 is not the file's");
  if (bytes.length !== result.sizeBytes) throw new Error("the reported size is not the file's");
  const data = new Map(header.tensors.map((t) => [t.name, new Uint8Array(bytes.subarray(header.dataStart + t.begin, header.dataStart + t.end))]));
  return { order: header.tensors.map((t) => t.name), metadata: header.metadata, data };
}

async function averageAndCompare(
  t: { deepEqual: (a: unknown, b: unknown, m?: string) => void },
  updates: { tensors: Tensor[]; weight: number; metadata?: Record<string, string> }[],
  opts: { chunkBytes?: number; inThread?: boolean } = {},
) {
  const inputs: FedAvgInput[] = [];
  for (const [i, u] of updates.entries()) inputs.push({ path: await writeUpdate(u.tensors, u.metadata), weight: u.weight, label: `trust-${i}` });
  const out = path.join(dir, `out-${files++}.safetensors`);
  const result = opts.inThread ? await averageSafetensorsFiles(inputs, out, opts) : await federatedAverage(inputs, out, opts);
  const got = await readOutput(out, result);
  const want = reference(updates);
  t.deepEqual(got.order, updates[0]!.tensors.map((x) => x.name), "the first update's tensor order");
  for (const [name, bytes] of want) t.deepEqual(got.data.get(name), bytes, `tensor ${name}`);
  return { result, got };
}

test("float32 and float64 tensors are the sample-weighted mean of the updates", async (t) => {
  const out = path.join(dir, "simple.safetensors");
  const a = await writeUpdate([t32("w", [2, 2], [1, 2, 3, 4]), t64("b", [2], [0.5, -8])]);
  const b = await writeUpdate([t32("w", [2, 2], [5, 6, 7, 8]), t64("b", [2], [1.5, 8])]);
  const result = await federatedAverage(
    [
      { path: a, weight: 100, label: "north" },
      { path: b, weight: 300, label: "south" },
    ],
    out,
  );
  const got = await readOutput(out, result);
  t.deepEqual([...new Float32Array(got.data.get("w")!.slice().buffer)], [4, 5, 6, 7]);
  t.deepEqual([...new Float64Array(got.data.get("b")!.slice().buffer)], [1.25, 4]);
  t.is(result.totalWeight, 400);
  t.is(result.tensors, 2);
  await t.throwsAsync(stat(`${out}.part`), { code: "ENOENT" });

  const rand = random(1);
  await averageAndCompare(t, [1, 7, 3].map((weight) => ({ weight, tensors: [randomTensor(rand, "w", "F32", [37, 5]), randomTensor(rand, "b", "F64", [13])] })));
});

test("float16 and bfloat16 tensors are averaged in float64 and rounded to nearest even", async (t) => {
  const rand = random(2);
  await averageAndCompare(t, [2, 5, 11, 1].map((weight) => ({ weight, tensors: [randomTensor(rand, "h", "F16", [257]), randomTensor(rand, "bf", "BF16", [3, 67])] })));
  // 1 and 1 + 2^-10 (adjacent float16s), weighted 1:1 and 1:3: a tie to even and a clear winner.
  const { got } = await averageAndCompare(t, [
    { weight: 1, tensors: [{ name: "h", dtype: "F16", shape: [2], data: bytesOf(new Uint16Array([0x3c00, 0x3c00])) }] },
    { weight: 1, tensors: [{ name: "h", dtype: "F16", shape: [2], data: bytesOf(new Uint16Array([0x3c01, 0x3c01])) }] },
  ]);
  t.deepEqual([...new Uint16Array(got.data.get("h")!.slice().buffer)], [0x3c00, 0x3c00]);
});

test("integer and bool tensors are taken from the update with the most samples, the first of equals", async (t) => {
  const rand = random(3);
  const tensors = () => [randomTensor(rand, "w", "F32", [9]), randomTensor(rand, "steps", "I64", []), randomTensor(rand, "ids", "I32", [5]), randomTensor(rand, "mask", "BOOL", [7]), randomTensor(rand, "q", "U8", [3]), randomTensor(rand, "s", "I16", [2]), randomTensor(rand, "c", "I8", [1])];
  const updates = [4, 9, 2, 9].map((weight) => ({ weight, tensors: tensors() }));
  const { got } = await averageAndCompare(t, updates);
  for (const name of ["steps", "ids", "mask", "q", "s", "c"]) t.deepEqual(got.data.get(name), updates[1]!.tensors.find((x) => x.name === name)!.data);
});

test("a single update is copied tensor for tensor, with its metadata", async (t) => {
  const rand = random(4);
  const tensors = [randomTensor(rand, "w", "F64", [11]), randomTensor(rand, "n", "I64", [])];
  const { got } = await averageAndCompare(t, [{ weight: 3, tensors, metadata: { format: "pt", round: "2" } }]);
  t.deepEqual(got.data.get("w"), tensors[0]!.data);
  t.deepEqual(got.metadata, { format: "pt", round: "2" });
});

test("the output keeps the first update's tensor order and metadata even when the others are laid out differently", async (t) => {
  const rand = random(5);
  const a = { weight: 2, metadata: { source: "north" }, tensors: [randomTensor(rand, "flag", "BOOL", [3]), randomTensor(rand, "w", "F32", [6]), randomTensor(rand, "h", "BF16", [5]), randomTensor(rand, "d", "F64", [3])] };
  // Another order: every tensor sits at a different offset, some not aligned to their element size.
  const b = { weight: 5, tensors: [randomTensor(rand, "d", "F64", [3]), randomTensor(rand, "h", "BF16", [5]), randomTensor(rand, "flag", "BOOL", [3]), randomTensor(rand, "w", "F32", [6])] };
  for (const chunkBytes of [8, 16, 1 << 20]) {
    const { got } = await averageAndCompare(t, [a, b], { chunkBytes });
    t.deepEqual(got.metadata, { source: "north" });
  }
});

test("sixty updates averaged with a tiny chunk give what an in-memory computation gives", async (t) => {
  const rand = random(6);
  const shapes: [string, Dtype, number[]][] = [
    ["conv.weight", "F32", [8, 3, 3, 3]],
    ["bn.num_batches_tracked", "I64", []],
    ["bn.running_mean", "F32", [8]],
    ["head.weight", "F64", [5, 8]],
    ["head.bias", "BF16", [5]],
    ["emb", "F16", [4, 7]],
  ];
  const updates = Array.from({ length: 60 }, (_, i) => ({ weight: 1 + ((i * 37) % 101), tensors: shapes.map(([n, d, s]) => randomTensor(rand, n, d, s)) }));
  for (const chunkBytes of [8, 24, 1000]) await averageAndCompare(t, updates, { chunkBytes });
  await averageAndCompare(t, updates, { chunkBytes: 40, inThread: true });
});

test("an update whose tensors differ from the first update's fails naming that update and the tensor", async (t) => {
  const base = [t32("w", [2, 3], [1, 2, 3, 4, 5, 6]), t32("b", [3], [1, 2, 3])];
  const first = await writeUpdate(base);
  const cases: [string, Tensor[], RegExp, string][] = [
    ["shape", [t32("w", [3, 2], [1, 2, 3, 4, 5, 6]), base[1]!], /update from south does not match update from north: tensor "w" has shape \[3, 2\], not \[2, 3\]/, "w"],
    ["dtype", [base[0]!, t64("b", [3], [1, 2, 3])], /tensor "b" is F64, not F32/, "b"],
    ["extra name", [...base, t32("extra", [1], [0])], /it has tensor "extra", which the other does not/, "extra"],
    ["missing name", [base[0]!], /it lacks tensor "b"/, "b"],
  ];
  for (const [what, tensors, message, tensor] of cases) {
    const other = await writeUpdate(tensors);
    const err = await t.throwsAsync(
      federatedAverage(
        [
          { path: first, weight: 1, label: "north" },
          { path: other, weight: 1, label: "south" },
        ],
        path.join(dir, `mismatch-${what}.safetensors`),
      ),
      { instanceOf: IncompatibleUpdateError, message },
    );
    t.is(err?.input, "south", what);
    t.is(err?.tensor, tensor, what);
    await t.throwsAsync(stat(path.join(dir, `mismatch-${what}.safetensors.part`)), { code: "ENOENT" });
  }
});

test("a malformed update fails with a SafetensorsError naming the update and what is wrong", async (t) => {
  const good = await writeUpdate([t32("w", [2], [1, 2])]);
  const bytes = serializeSafetensors([t32("w", [2], [1, 2])]);
  const truncated = path.join(dir, "truncated.safetensors");
  await writeFile(truncated, bytes.subarray(0, bytes.length - 4));
  const badLength = path.join(dir, "bad-length.safetensors");
  await writeFile(badLength, Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), bytes.subarray(8)]));
  for (const [file, message] of [
    [truncated, /^update from east: tensor "w": data_offsets \[0, 8\] run past the end of the 4-byte data section$/],
    [badLength, /^update from east: the header length 4294967295 runs past the end/],
  ] as const) {
    await t.throwsAsync(
      federatedAverage(
        [
          { path: good, weight: 1, label: "west" },
          { path: file, weight: 1, label: "east" },
        ],
        path.join(dir, "malformed-out.safetensors"),
      ),
      { instanceOf: SafetensorsError, message },
    );
  }
});

test("a weight that is not a positive sample count is refused naming the update", async (t) => {
  const a = await writeUpdate([t32("w", [1], [1])]);
  await t.throwsAsync(federatedAverage([{ path: a, weight: 0, label: "north" }], path.join(dir, "zero.safetensors")), {
    instanceOf: IncompatibleUpdateError,
    message: /update from north has weight 0 \(its sample count\); FedAvg weights must be positive/,
  });
});

test("aborting stops the worker, rejects with the abort reason and leaves neither the part file nor open files", async (t) => {
  const rand = random(7);
  const big = randomTensor(rand, "w", "F32", [1 << 20]);
  const inputs: FedAvgInput[] = [];
  for (let i = 0; i < 4; i++) inputs.push({ path: await writeUpdate([big]), weight: 1 + i, label: `t${i}` });
  const out = path.join(dir, "aborted.safetensors");
  const controller = new AbortController();
  // 4 KiB chunks: thousands of steps, so the abort lands mid-way.
  const running = federatedAverage(inputs, out, { signal: controller.signal, chunkBytes: 4096 });
  for (let waited = 0; waited < 10_000; waited += 5) {
    if (await stat(`${out}.part`).then((s) => s.size > 0, () => false)) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  controller.abort(new Error("job aborted"));
  await t.throwsAsync(running, { message: "job aborted" });
  await t.throwsAsync(stat(`${out}.part`), { code: "ENOENT" });
  await t.throwsAsync(stat(out), { code: "ENOENT" });
  const open = await Promise.all((await readdir("/proc/self/fd")).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => "")));
  const ours = new Set([...inputs.map((i) => i.path), out, `${out}.part`]);
  t.deepEqual(open.filter((p) => ours.has(p.replace(/ \(deleted\)$/, ""))), []);
  // The next average starts a new worker and works.
  await averageAndCompare(t, [{ weight: 1, tensors: [t32("w", [2], [1, 2])] }, { weight: 1, tensors: [t32("w", [2], [3, 4])] }]);
});

test("an already aborted signal starts nothing", async (t) => {
  const a = await writeUpdate([t32("w", [1], [1])]);
  await t.throwsAsync(federatedAverage([{ path: a, weight: 1, label: "north" }], path.join(dir, "never.safetensors"), { signal: AbortSignal.abort() }), { name: "AbortError" });
  await t.throwsAsync(stat(path.join(dir, "never.safetensors.part")), { code: "ENOENT" });
});

test("the worker keeps the TypeScript loader of the process's preloads and drops the others", (t) => {
  t.deepEqual(workerExecArgv(["--max-semi-space-size=4", "--import", "tsx", "--import", "@flip/shared/telemetry/register.ts"]), ["--import", "tsx"]);
  t.deepEqual(workerExecArgv(["--import=tsx", "--require=./trace.cjs", "--enable-source-maps"]), ["--import=tsx"]);
  t.deepEqual(workerExecArgv([]), []);
});
