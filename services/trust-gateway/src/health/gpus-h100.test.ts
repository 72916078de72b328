import { readFileSync } from "node:fs";
import * as path from "node:path";
import test from "ava";
import { GpuSource } from "@flip/gen/flip/common/v1/common_pb.js";
import { readGpuInventory } from "./gpus.js";

// Captured verbatim from `nvidia-smi` (with NVIDIA_SMI_ARGS) on a lent NVIDIA H100 machine, 2026-11-22.
const h100 = readFileSync(path.join(import.meta.dirname, "fixtures/nvidia-smi-h100.csv"), "utf8");

test("the inventory read from a real H100's nvidia-smi output names the GPU, its UUID and its memory", async (t) => {
  const inv = await readGpuInventory({ mode: "auto" }, async () => h100);
  t.is(inv.source, GpuSource.NVIDIA_SMI);
  t.is(inv.gpus.length, 1);
  const [gpu] = inv.gpus;
  t.is(gpu!.index, 0);
  t.is(gpu!.name, "NVIDIA H100 80GB HBM3");
  t.regex(gpu!.uuid, /^GPU-[0-9a-f-]{36}$/);
  t.is(gpu!.memoryTotalMib, 81559n);
  t.is(gpu!.utilizationPercent, 0);
});
