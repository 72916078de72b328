import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import test from "ava";
import type Docker from "dockerode";
import { ensureDockerEngine, type DockerEngine } from "@flip/shared/docker/engine.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { DockerStreamError, followDockerStream } from "./docker-stream.js";
import { ensureWorkloadImages, LABEL_INPUTS, WORKLOAD_IMAGES, type ImageProgress, type WorkloadImage } from "./ensure-images.js";
import { ImageCache } from "./image-cache.js";

const REPO = path.resolve(import.meta.dirname, "..", "..", "..");
const log = createLogger({ service: "images-test", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });

let engine: DockerEngine;
let first: WorkloadImage;
const progress: ImageProgress[] = [];

// Builds the numpy image for real the first time (about 35 s here), then finds it in the engine or the cache.
// An engine this starts is left running, like one a gateway or another test file may be using too.
test.before(async () => {
  engine = await ensureDockerEngine({ log });
  [first] = (await ensureWorkloadImages(engine, { names: ["train-numpy"], log, progress: (p) => progress.push(p) })) as [WorkloadImage];
});

/** Runs a container of `image` under the gateway's sandbox flags; returns its exit code and output. */
async function sandboxed(docker: Docker, image: string, cmd: string[], binds: string[] = [], env: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: cmd,
    Env: env,
    User: "65534:65534",
    NetworkDisabled: true,
    HostConfig: {
      NetworkMode: "none",
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      PidsLimit: 256,
      Memory: 2 * 1024 ** 3,
      MemorySwap: 2 * 1024 ** 3,
      NanoCpus: 1e9,
      Tmpfs: { "/tmp": "rw,noexec,nosuid,size=256m" },
      Init: true,
      Binds: binds,
    },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const raw = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    return { code: StatusCode, ...demux(raw) };
  } finally {
    await container.remove({ force: true });
  }
}

/** stdout and stderr of the engine's multiplexed log format (8-byte frame headers: stream, 0, 0, 0, size). */
function demux(raw: Buffer): { stdout: string; stderr: string } {
  const out = { stdout: "", stderr: "" };
  for (let at = 0; at + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(at + 4);
    const text = raw.subarray(at + 8, at + 8 + size).toString("utf8");
    if (raw[at] === 2) out.stderr += text;
    else out.stdout += text;
    at += 8 + size;
  }
  return out;
}

test("the numpy image has numpy and the SDK, and runs as nobody on a read-only root under the sandbox flags", async (t) => {
  t.is(first.tag, WORKLOAD_IMAGES.numpy);
  const script = [
    "import os, numpy, flip_runtime",
    "print(numpy.__version__, flip_runtime.__file__, os.getuid(), os.getgid())",
    "try:\n    open('/etc/x', 'w')\nexcept OSError as e:\n    print('etc', e.errno)",
    "print('net', sorted(os.listdir('/sys/class/net')))",
  ].join("\n");
  const run = await sandboxed(engine.docker, WORKLOAD_IMAGES.numpy, ["python3", "-c", script]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /^1\.\d+\.\d+ \/usr\/lib\/python3\/dist-packages\/flip_runtime\/__init__\.py 65534 65534$/m);
  t.regex(run.stdout, /^etc 30$/m, "EROFS");
  t.regex(run.stdout, /^net \['lo'\]$/m);
});

test("the image carries the hash of its inputs, and a second call finds it in the engine", async (t) => {
  const info = await engine.docker.getImage(WORKLOAD_IMAGES.numpy).inspect();
  t.is(info.Config.Labels?.[LABEL_INPUTS], first.inputsHash);
  const [again] = await ensureWorkloadImages(engine, { names: ["train-numpy"], log });
  t.is(again!.source, "engine");
  t.is(again!.inputsHash, first.inputsHash);
  t.true(again!.seconds < 5);
  if (first.source === "built") {
    t.true(progress.some((p) => p.step === "build" && p.done));
    t.true(progress.some((p) => p.step === "save" && p.done));
  }
  t.true(progress.every((p) => p.image === WORKLOAD_IMAGES.numpy && p.message.length > 0));
});

test("the numpy workload trains two simulated trusts for three rounds inside its image, through the SDK", async (t) => {
  const run = await sandboxed(
    engine.docker,
    WORKLOAD_IMAGES.numpy,
    ["python3", "-B", "/repo/tools/gpu/runtime_stub.py", "--workload", "/repo/workloads/train-numpy/train.py", "--trusts", "2", "--rounds", "3", "--config", '{"local_epochs": 5}'],
    [`${REPO}:/repo:ro`],
  );
  t.is(run.code, 0, run.stderr + run.stdout);
  const summary = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as { ok: boolean; rounds_completed: number; per_round: { loss: number; seconds: number }[] };
  t.true(summary.ok);
  t.is(summary.rounds_completed, 3);
  const losses = summary.per_round.map((r) => r.loss);
  t.true(losses[2]! < losses[0]!, `loss went down: ${losses.join(", ")}`);
  t.true(summary.per_round.slice(1).every((r) => r.seconds < 1), "a round takes well under a second");
  t.regex(run.stderr, /the cohort is not available here .*training on synthetic data/, "without a cohort it says so and trains on synthetic rows");
});

test("the numpy workload learns from the cohort's numeric columns, and an evaluation job only reports metrics", async (t) => {
  const rows = Array.from({ length: 60 }, (_, i) => [i + 1, 30 + ((i * 7) % 50), 18 + ((i * 13) % 17), i % 2 ? "F" : "M", (i * 7) % 50 > 25]);
  const cohort = JSON.stringify({ columns: ["person_id", "age", "bmi", "sex", "smoker"], rows });
  const stub = "python3 -B /repo/tools/gpu/runtime_stub.py --workload /repo/workloads/train-numpy/train.py --trusts 2";
  const run = await sandboxed(
    engine.docker,
    WORKLOAD_IMAGES.numpy,
    ["sh", "-c", `${stub} --rounds 3 --cohort "$COHORT" --config '{"label_column": "smoker"}' --save-weights /tmp/w.safetensors && ${stub} --rounds 1 --cohort "$COHORT" --config '{"label_column": "smoker"}' --evaluate --weights /tmp/w.safetensors`],
    [`${REPO}:/repo:ro`],
    [`COHORT=${cohort}`],
  );
  t.is(run.code, 0, run.stderr + run.stdout);
  const [train, evaluation] = run.stdout.trim().split("\n").map((l) => JSON.parse(l) as { ok: boolean; mode: string; per_round: { loss: number; accuracy: number }[] });
  t.true(train!.ok && evaluation!.ok);
  t.regex(run.stderr, /cohort: 2 features \(age, bmi\), label smoker/, "person_id and the text column are left out");
  t.is(evaluation!.mode, "evaluate");
  t.true(evaluation!.per_round[0]!.accuracy > 0.8, `the trained weights separate smokers: ${JSON.stringify(evaluation!.per_round)}`);
  t.regex(run.stderr, /round 1: closed with 0 updates/);
});

test("an image tarball saved to the cache loads back into the engine", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-image-cache-"));
  const cache = new ImageCache(dir);
  const ref = `flip-test/image-cache:${process.pid}`;
  const [repo, tag] = ref.split(":") as [string, string];
  await engine.docker.getImage(WORKLOAD_IMAGES.numpy).tag({ repo, tag });
  t.teardown(async () => {
    await engine.docker
      .getImage(ref)
      .remove()
      .catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const file = cache.file("cache-test", "b".repeat(64), "c".repeat(64));
  t.true((await cache.save(engine.docker, [ref], file)) > 10_000_000);
  await engine.docker.getImage(ref).remove();
  await t.throwsAsync(engine.docker.getImage(ref).inspect());
  await cache.load(engine.docker, file);
  t.is((await engine.docker.getImage(ref).inspect()).Id, (await engine.docker.getImage(WORKLOAD_IMAGES.numpy).inspect()).Id);
  t.deepEqual(await cache.withBase("cache-test", "b".repeat(64)), [file]);
  await writeFile(cache.file("cache-test", "b".repeat(64), "d".repeat(64)), "older");
  await cache.prune("cache-test", file);
  t.deepEqual((await readdir(dir)).sort(), [path.basename(file)]);
});

test("processes making the same image take turns", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-image-lock-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cache = new ImageCache(dir);
  const order: string[] = [];
  const waited: number[] = [];
  const work = (name: string) => async () => {
    order.push(`${name} in`);
    await new Promise((r) => setTimeout(r, 200));
    order.push(`${name} out`);
  };
  await Promise.all([cache.locked("x", (pid) => waited.push(pid), work("a")), cache.locked("x", (pid) => waited.push(pid), work("b"))]);
  // Either may win the lock; what matters is that the second starts only after the first is done.
  const [first] = order[0]!.split(" ");
  const second = first === "a" ? "b" : "a";
  t.deepEqual(order, [`${first} in`, `${first} out`, `${second} in`, `${second} out`]);
  t.deepEqual(waited, [process.pid]);
  t.deepEqual(await readdir(dir), [], "the lock is gone");
});

test("an error in the middle of the engine's progress stream rejects with the engine's message", async (t) => {
  const stream = new PassThrough();
  const followed = followDockerStream(stream);
  stream.write('{"stream":"Step 1/5 : FROM x"}\n{"errorDetail":{"message":"pull access denied for x"},"error":"pull access denied for x"}\n');
  stream.end();
  const err = await t.throwsAsync(followed, { instanceOf: DockerStreamError });
  t.is(err.message, "pull access denied for x");
});
