import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { ModelBundleSchema } from "@flip/gen/flip/hub/v1/training_pb.js";
import { TrainingAction, TrainingSpecSchema, type TrainingReport, type TrainingSpec } from "@flip/gen/flip/link/v1/tasks_pb.js";
import type { DockerEngine } from "@flip/shared/docker/engine.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import type { TaskContext } from "@flip/trust-gateway/tasks/task-handler.js";
import type { ArtifactTransfers } from "@flip/trust-gateway/training/transfers.js";
import type Docker from "dockerode";

/**
 * The image the gateway tests run: Debian's python3 and nothing else, its command the bundle's main.py.
 * Built once per Docker engine from Debian packages (mmdebstrap, then `docker import`), kept by its tag.
 * FLIP_TEST_TRAINING_IMAGE names another one to use instead.
 */
export const TEST_IMAGE = process.env.FLIP_TEST_TRAINING_IMAGE ?? "flip-test/python:1";

/** The test workload (standard library only), shipped in each job's bundle as main.py. */
export const WORKLOAD_SOURCE = path.join(import.meta.dirname, "gateway-workload.py");

/** Builds TEST_IMAGE when the engine lacks it; concurrent test processes wait for one build. */
export async function ensureTestImage(engine: DockerEngine, log: Logger): Promise<void> {
  const present = async () => {
    try {
      await engine.docker.getImage(TEST_IMAGE).inspect();
      return true;
    } catch {
      return false;
    }
  };
  if (await present()) return;
  const lock = path.join(os.tmpdir(), `flip-test-image-${TEST_IMAGE.replace(/[^A-Za-z0-9]/g, "_")}.lock`);
  await eventually(
    async () => {
      try {
        await mkdir(lock);
        return true;
      } catch {
        return false;
      }
    },
    Boolean,
    { timeoutMs: 10 * 60_000, everyMs: 500, what: `the image build lock ${lock}` },
  );
  try {
    if (await present()) return;
    log.info({ image: TEST_IMAGE }, "building the gateway test image (mmdebstrap bookworm + python3, about 20 s)");
    const started = Date.now();
    await run(
      "sh",
      [
        "-c",
        `mmdebstrap --quiet --variant=essential --include=python3 --dpkgopt=force-unsafe-io bookworm - | docker import --change 'CMD ["python3", "/flip/bundle/main.py"]' - ${TEST_IMAGE}`,
      ],
      { ...process.env, DOCKER_HOST: engine.host },
    );
    log.info({ image: TEST_IMAGE, ms: Date.now() - started }, "gateway test image built");
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`building ${TEST_IMAGE} failed (${code}); it needs root, mmdebstrap and Debian's mirror, or set FLIP_TEST_TRAINING_IMAGE:\n${stderr}`)),
    );
  });
}

/** Artifacts in a local directory instead of the hub: what the hub would hold, and what the trust uploaded. */
export class LocalArtifacts implements ArtifactTransfers {
  readonly uploads = new Map<string, { file: string; taskId: string }>();
  private readonly files = new Map<string, string>();

  private constructor(readonly dir: string) {}

  static async create(): Promise<LocalArtifacts> {
    return new LocalArtifacts(await mkdtemp(path.join(os.tmpdir(), "flip-artifacts-")));
  }

  /** Stores bytes as an artifact the trust may download. */
  async put(artifactId: string, bytes: Uint8Array): Promise<void> {
    const file = path.join(this.dir, artifactId);
    await writeFile(file, bytes);
    this.files.set(artifactId, file);
  }

  async download(artifactId: string, destination: string): Promise<void> {
    const file = this.files.get(artifactId);
    if (!file) throw new Error(`no artifact ${artifactId}`);
    await copyFile(file, destination);
  }

  async uploadUpdate(file: string, artifactId: string, taskId: string): Promise<void> {
    const kept = path.join(this.dir, `upload-${artifactId}`);
    await copyFile(file, kept);
    this.uploads.set(artifactId, { file: kept, taskId });
  }

  async uploaded(artifactId: string): Promise<Buffer> {
    return await readFile(this.uploads.get(artifactId)!.file);
  }
}

/** The test workload as a ModelBundle artifact's bytes. */
export async function workloadBundle(): Promise<Uint8Array> {
  return toBinary(ModelBundleSchema, create(ModelBundleSchema, { files: [{ path: "main.py", content: await readFile(WORKLOAD_SOURCE) }] }));
}

/** A safetensors file of one F32 tensor "w". */
export function weights(values: number[]): Buffer {
  let header = JSON.stringify({ w: { dtype: "F32", shape: [values.length], data_offsets: [0, values.length * 4] } });
  header += " ".repeat((8 - (header.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, Buffer.from(header), Buffer.from(new Float32Array(values).buffer)]);
}

/** The values of tensor "w" in a safetensors file. */
export function readWeights(bytes: Buffer): number[] {
  const n = Number(bytes.readBigUInt64LE(0));
  const entry = (JSON.parse(bytes.subarray(8, 8 + n).toString()) as Record<string, { data_offsets: [number, number] }>).w!;
  const data = bytes.subarray(8 + n + entry.data_offsets[0], 8 + n + entry.data_offsets[1]);
  return [...new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))];
}

/** A training spec as the hub would send it. */
export function trainingSpec(fields: MessageInitShape<typeof TrainingSpecSchema>): TrainingSpec {
  return create(TrainingSpecSchema, { action: TrainingAction.ROUND, projectId: "proj1", image: TEST_IMAGE, rounds: 3, roundTimeoutSeconds: 600, configJson: "{}", ...fields });
}

/** A task context for calling the handler directly: cancellable, collecting live reports. */
export function taskContext(log: Logger, taskId = `task-${Math.random().toString(36).slice(2)}`): TaskContext & { abort: AbortController; live: TrainingReport[] } {
  const abort = new AbortController();
  const live: TrainingReport[] = [];
  return {
    taskId,
    attempt: 1,
    projectId: "proj1",
    deadline: new Date(Date.now() + 600_000),
    trustCode: "north",
    signal: abort.signal,
    progress() {},
    report: (r) => live.push(r),
    reportImaging() {},
    log,
    abort,
    live,
  };
}

/** Containers of a job on the engine (any trust). */
export async function jobContainers(docker: Docker, jobId: string): Promise<Docker.ContainerInfo[]> {
  return await docker.listContainers({ all: true, filters: { label: [`flip.job=${jobId}`] } });
}
