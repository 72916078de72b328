import { execFile } from "node:child_process";
import { create } from "@bufbuild/protobuf";
import { GpuDeviceSchema, GpuSource, type GpuDevice } from "@flip/gen/flip/common/v1/common_pb.js";
import type { GpuSetting } from "../config.js";

export interface GpuInventory {
  gpus: GpuDevice[];
  source: GpuSource;
}

/** The nvidia-smi query the inventory is read from (CSV, no header, no units). */
export const NVIDIA_SMI_ARGS = ["--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu", "--format=csv,noheader,nounits"];

/** Parses nvidia-smi's CSV; lines it cannot read are skipped ("[N/A]" values read as 0). */
export function parseNvidiaSmi(csv: string): GpuDevice[] {
  const num = (s: string | undefined) => {
    const n = Number(s?.trim());
    return Number.isFinite(n) && n >= 0 ? Math.round(n) : 0;
  };
  return csv
    .split("\n")
    .map((line) => line.split(",").map((c) => c.trim()))
    .filter((cells) => cells.length >= 3 && /^\d+$/.test(cells[0]!))
    .map(([index, uuid, name, total, used, util]) =>
      create(GpuDeviceSchema, {
        index: num(index),
        uuid: uuid ?? "",
        name: name ?? "",
        memoryTotalMib: BigInt(num(total)),
        memoryUsedMib: BigInt(num(used)),
        utilizationPercent: Math.min(100, num(util)),
      }),
    );
}

export type RunNvidiaSmi = () => Promise<string>;

/** Runs nvidia-smi; rejects when it is absent or fails (no driver, no GPU). */
export const runNvidiaSmi: RunNvidiaSmi = () =>
  new Promise((resolve, reject) => {
    execFile("nvidia-smi", NVIDIA_SMI_ARGS, { timeout: 5_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });

/**
 * The trust's GPUs: as the operator declared them, none when declared so, else what nvidia-smi
 * reports, else none.
 */
export async function readGpuInventory(setting: GpuSetting, run: RunNvidiaSmi = runNvidiaSmi): Promise<GpuInventory> {
  if (setting.mode === "declared") return { gpus: setting.gpus, source: GpuSource.DECLARED };
  if (setting.mode === "none") return { gpus: [], source: GpuSource.NONE };
  try {
    const gpus = parseNvidiaSmi(await run());
    return gpus.length ? { gpus, source: GpuSource.NVIDIA_SMI } : { gpus: [], source: GpuSource.NONE };
  } catch {
    return { gpus: [], source: GpuSource.NONE };
  }
}
