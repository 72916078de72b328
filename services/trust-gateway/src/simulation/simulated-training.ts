import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { TrainingAction } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { parseSafetensorsHeader, serializeSafetensors } from "@flip/shared/safetensors/safetensors.js";
import { createArtifactClient, downloadArtifact, uploadArtifact, type ArtifactClient } from "../artifacts/index.js";
import { TaskErrorCode, TaskFailure, type TaskHandler } from "../tasks/task-handler.js";

/** What a simulated trust does in a round: its update's values, derived from the global ones. */
export interface SimulatedTrainer {
  /** Tensor length of the model (float32 values) when a round starts without weights. */
  modelFloats: number;
  /** Samples behind each update (the FedAvg weight). */
  samples: number;
  /** The update from the global weights (null in round 1 without initial weights); default global + 1. */
  train?: (global: Float32Array | null, round: number) => Float32Array;
  /** Fail this round instead (k-of-n tests). */
  failRound?: (round: number) => string | undefined;
  /** Metrics to report with the result. */
  metrics?: (round: number) => { label: string; value: number }[];
}

/** A safetensors file of one F32 tensor named "w". */
export function singleTensorSafetensors(values: Float32Array): Buffer {
  return serializeSafetensors([{ name: "w", dtype: "F32", shape: [values.length], data: values }]);
}

/** The first tensor of a file written by singleTensorSafetensors (or any file whose first tensor is F32). */
export function readSingleTensor(bytes: Buffer): Float32Array {
  const header = parseSafetensorsHeader(bytes);
  const t = header.tensors[0]!;
  const data = bytes.subarray(header.dataStart + t.begin, header.dataStart + t.end);
  return new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

/**
 * A training handler without a container, for hub tests and the rounds benchmark: the real link,
 * artifact transfers and aggregation, with a workload that is a function. It downloads the round's
 * global weights, computes its update, uploads it and reports the sample count.
 */
export function simulatedTrainingHandler(opts: { hubUrl: string; trustKey: string; trainer: SimulatedTrainer }): { handler: TaskHandler<"training">; client: ArtifactClient } {
  const client = createArtifactClient({ baseUrl: opts.hubUrl, apiKey: opts.trustKey });
  const handler: TaskHandler<"training"> = async (spec, ctx) => {
    if (spec.action === TrainingAction.STOP) return { round: 0 };
    const failure = opts.trainer.failRound?.(spec.round);
    if (failure) throw new TaskFailure(TaskErrorCode.INTERNAL, failure);
    const dir = await mkdtemp(path.join(os.tmpdir(), "flip-sim-train-"));
    try {
      await mkdir(dir, { recursive: true });
      let global: Float32Array | null = null;
      if (spec.globalWeightsArtifactId) {
        const file = path.join(dir, "global.safetensors");
        await downloadArtifact(client, spec.globalWeightsArtifactId, file, { signal: ctx.signal });
        global = readSingleTensor(await readFile(file));
      }
      const update = opts.trainer.train?.(global, spec.round) ?? plusOne(global, opts.trainer.modelFloats);
      const file = path.join(dir, "update.safetensors");
      await writeFile(file, singleTensorSafetensors(update));
      const uploaded = await uploadArtifact(client, { purpose: "model-update", taskId: ctx.taskId, source: file }, { signal: ctx.signal });
      const metrics = (opts.trainer.metrics?.(spec.round) ?? []).map((m, i) => ({ seq: BigInt(Date.now() * 1000 + i), round: spec.round, label: m.label, value: m.value }));
      return { round: spec.round, samples: BigInt(opts.trainer.samples), updateArtifactId: uploaded.artifactId, roundsCompleted: spec.round, report: { metrics } };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  return { handler, client };
}

function plusOne(global: Float32Array | null, floats: number): Float32Array {
  const out = new Float32Array(global?.length ?? floats);
  if (global) for (let i = 0; i < out.length; i++) out[i] = global[i]! + 1;
  return out;
}
