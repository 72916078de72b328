import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { Code, ConnectError, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import { RuntimeService, type Metric, type ReportEventRequest } from "@flip/gen/flip/runtime/v1/runtime_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { serve } from "@flip/shared/server/serve.js";

/** Debian's python3: what the workload images run, and what CI has. */
const PYTHON = "/usr/bin/python3";
const REPO = path.resolve(import.meta.dirname, "..", "..", "..");
const SDK = path.join(REPO, "sdk", "python");

function runPython(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ["-B", ...args], { cwd: REPO, env: { ...process.env, PYTHONPATH: SDK, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code: code ?? -1, out, err }));
  });
}

test.before(() => {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: apt-get install python3 (Debian's, as in the workload images)`);
});

test("the Python SDK's own tests pass under Debian's python3", async (t) => {
  const run = await runPython(["-m", "unittest", "discover", "-s", "sdk/python/tests"]);
  t.is(run.code, 0, run.err);
  t.regex(run.err, /\nOK/);
});

/** What the scripted runtime service received. */
interface Seen {
  updates: { round: number; samples: bigint; messages: number; bytes: number }[];
  metrics: Metric[];
  events: ReportEventRequest[];
  lines: string[];
  weightsAsked: number[];
}

// A safetensors file of one U8 tensor of `n` bytes (header padded to 8, as the format asks).
function safetensorsOf(n: number): Uint8Array {
  let header = JSON.stringify({ w: { dtype: "U8", shape: [n], data_offsets: [0, n] } });
  header += " ".repeat((8 - (header.length % 8)) % 8);
  const out = new Uint8Array(8 + header.length + n);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(new TextEncoder().encode(header), 8);
  out.fill(7, 8 + header.length);
  return out;
}

function scriptedRuntime(seen: Seen): Partial<ServiceImpl<typeof RuntimeService>> {
  const weights = safetensorsOf(2_500_000);
  let round = 0;
  return {
    getConfig: () => ({ jobId: "job-1", projectId: "p-1", trustCode: "north", rounds: 2, configJson: '{"local_epochs": 2}', mode: "train", gpus: 0, currentRound: 1 }),
    async *getGlobalWeights(req) {
      seen.weightsAsked.push(req.round);
      round += 1;
      if (round === 1) yield { round: 1 };
      else if (round === 2) {
        for (let at = 0; at < weights.length; at += 1024 * 1024) {
          yield { round: 2, data: weights.subarray(at, at + 1024 * 1024), ...(at === 0 ? { sizeBytes: BigInt(weights.length) } : {}) };
        }
      } else yield { done: true };
    },
    async pushUpdate(requests) {
      let first: { round: number; samples: bigint } | undefined;
      let messages = 0;
      let bytes = 0;
      for await (const m of requests) {
        first ??= { round: m.round, samples: m.sampleCount };
        messages += 1;
        bytes += m.data.length;
      }
      seen.updates.push({ ...first!, messages, bytes });
      return { sizeBytes: BigInt(bytes) };
    },
    reportMetrics: (req) => {
      if (req.metrics.some((m) => m.label === "")) throw new ConnectError("metrics[0]: label is empty", Code.InvalidArgument);
      seen.metrics.push(...req.metrics);
      return {};
    },
    reportEvent: (req) => {
      seen.events.push(req);
      return {};
    },
    writeLog: (req) => {
      seen.lines.push(...req.lines);
      return {};
    },
    async *getCohort(req) {
      if (req.batchSize !== 500) throw new ConnectError(`batch_size ${req.batchSize}, expected 500`, Code.InvalidArgument);
      yield { columns: ["person_id", "age", "sex"], rows: [{ values: ["1", "54", '"F"'] }] };
      yield { columns: ["person_id", "age", "sex"], rows: [{ values: ["2", "null", '"M"'] }] };
    },
    listImages: () => ({ images: [{ imageId: "s1/a.npy", format: "npy", sizeBytes: 3n, studyKey: "s1" }] }),
    async *readImage(req) {
      if (req.imageId !== "s1/a.npy") throw new ConnectError(`no image "${req.imageId}"`, Code.NotFound);
      yield { data: new Uint8Array([1, 2]) };
      yield { data: new Uint8Array([3]) };
    },
  };
}

const requireToken =
  (token: string): Interceptor =>
  (next) =>
  async (req) => {
    if (req.header.get("authorization") !== `Bearer ${token}`) throw new ConnectError("present the job's token", Code.Unauthenticated);
    return await next(req);
  };

// Every call of the SDK against connect-node, the server stack the trust gateway runs.
const SCRIPT = String.raw`
import json, struct
from flip_runtime import Runtime, RuntimeCallError, Tensor
rt = Runtime()
out = {}
cfg = rt.config()
out["config"] = [cfg.job_id, cfg.project_id, cfg.trust_code, cfg.rounds, cfg.mode, cfg.gpus, cfg.current_round, cfg.config]
out["rounds"] = []
for rnd in rt.rounds():
    out["rounds"].append([rnd.number, None if rnd.weights is None else rnd.weights["w"].nbytes])
    rt.metric("loss", 0.5 / rnd.number, round=rnd.number, x=("epoch", rnd.number * 2))
    out.setdefault("pushed", []).append(rt.push_update(rnd.number, {"w": Tensor("U8", (3_000_000,), bytes(3_000_000)), "steps": Tensor("I64", (), struct.pack("<q", 9))}, samples=40 + rnd.number))
rt.event("device", 0, "training on cpu", device="cpu")
rt.log("line one", "line two")
cohort = rt.cohort(batch_size=500)
out["cohort"] = [cohort.columns, cohort.rows]
images = rt.images()
out["images"] = [[i.image_id, i.format, i.size_bytes, i.study_key] for i in images]
out["image"] = list(rt.read_image(images[0]))
for call in (lambda: rt.read_image("nope"), lambda: rt.metric("", 1.0), lambda: Runtime(token="wrong").config()):
    try:
        call()
    except RuntimeCallError as e:
        out.setdefault("errors", []).append([e.code, e.message])
print(json.dumps(out))
`;

test("the Python SDK speaks flip.runtime.v1 to a connect-node server on a unix socket", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-sdk-"));
  const socket = path.join(dir, "runtime.sock");
  const seen: Seen = { updates: [], metrics: [], events: [], lines: [], weightsAsked: [] };
  const impl = scriptedRuntime(seen);
  const server = await serve({
    path: socket,
    services: [RuntimeService],
    routes: (router) => router.service(RuntimeService, impl),
    interceptors: [requireToken("tok-1")],
    log: createLogger({ service: "sdk-test", level: "silent" }),
  });
  t.teardown(async () => {
    await server.close(100);
    await rm(dir, { recursive: true, force: true });
  });

  const run = await runPython(["-c", SCRIPT], { FLIP_RUNTIME_SOCKET: socket, FLIP_RUNTIME_TOKEN: "tok-1" });
  t.is(run.code, 0, run.err);
  const out = JSON.parse(run.out) as Record<string, unknown>;
  t.deepEqual(out.config, ["job-1", "p-1", "north", 2, "train", 0, 1, { local_epochs: 2 }]);
  t.deepEqual(out.rounds, [
    [1, null],
    [2, 2_500_000],
  ]);
  t.deepEqual(seen.weightsAsked, [0, 0, 0], "round 0 each time: the next round, whichever it is");
  t.deepEqual(
    seen.updates.map((u) => [u.round, u.samples, u.messages]),
    [
      [1, 41n, 3],
      [2, 42n, 3],
    ],
    "round and sample count on the first message, 1 MiB chunks",
  );
  t.deepEqual(out.pushed, [seen.updates[0]!.bytes, seen.updates[1]!.bytes]);
  t.deepEqual(
    seen.metrics.map((m) => [m.label, m.value, m.round, m.xLabel, m.xValue]),
    [
      ["loss", 0.5, 1, "epoch", 2],
      ["loss", 0.25, 2, "epoch", 4],
    ],
  );
  t.deepEqual(
    seen.events.map((e) => [e.kind, e.round, e.message, { ...e.details }]),
    [["device", 0, "training on cpu", { device: "cpu" }]],
  );
  t.deepEqual(seen.lines, ["line one", "line two"]);
  t.deepEqual(out.cohort, [
    ["person_id", "age", "sex"],
    [
      [1, 54, "F"],
      [2, null, "M"],
    ],
  ]);
  t.deepEqual(out.images, [["s1/a.npy", "npy", 3, "s1"]]);
  t.deepEqual(out.image, [1, 2, 3]);
  t.deepEqual(out.errors, [
    ["not_found", 'no image "nope"'],
    ["invalid_argument", "metrics[0]: label is empty"],
    ["unauthenticated", "present the job's token"],
  ]);
});
