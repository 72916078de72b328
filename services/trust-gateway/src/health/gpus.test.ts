import test from "ava";
import { create } from "@bufbuild/protobuf";
import { GpuDeviceSchema, GpuSource } from "@flip/gen/flip/common/v1/common_pb.js";
import { parseGpus } from "../config.js";
import { parseNvidiaSmi, readGpuInventory } from "./gpus.js";

const twoGpus = `0, GPU-1a2b3c4d-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB, 40960, 1024, 37
1, GPU-5e6f7a8b-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB, 40960, [N/A], 0
`;

test("nvidia-smi's CSV becomes a GPU inventory", (t) => {
  const gpus = parseNvidiaSmi(twoGpus);
  t.is(gpus.length, 2);
  t.is(gpus[0]!.name, "NVIDIA A100-SXM4-40GB");
  t.is(gpus[0]!.memoryTotalMib, 40960n);
  t.is(gpus[0]!.memoryUsedMib, 1024n);
  t.is(gpus[0]!.utilizationPercent, 37);
  t.is(gpus[1]!.index, 1);
  t.is(gpus[1]!.memoryUsedMib, 0n, "[N/A] reads as 0");
  t.deepEqual(parseNvidiaSmi("No devices were found\n"), []);
});

test("GPUs come from the declaration, else nvidia-smi, else none", async (t) => {
  const declared = parseGpus("FLIP_GATEWAY_GPUS", '[{"name":"RTX 6000","memoryTotalMib":24576}]');
  const fromConfig = await readGpuInventory(declared, () => Promise.reject(new Error("not called")));
  t.is(fromConfig.source, GpuSource.DECLARED);
  t.deepEqual(fromConfig.gpus, [create(GpuDeviceSchema, { index: 0, name: "RTX 6000", memoryTotalMib: 24576n })]);
  t.is((await readGpuInventory({ mode: "auto" }, async () => twoGpus)).source, GpuSource.NVIDIA_SMI);
  const missing = await readGpuInventory({ mode: "auto" }, () => Promise.reject(Object.assign(new Error("spawn nvidia-smi ENOENT"), { code: "ENOENT" })));
  t.deepEqual(missing, { gpus: [], source: GpuSource.NONE });
  t.is((await readGpuInventory({ mode: "none" }, async () => twoGpus)).source, GpuSource.NONE);
});

test("a malformed GPU declaration is a configuration error naming the setting", (t) => {
  t.throws(() => parseGpus("FLIP_GATEWAY_GPUS", "[{}]"), { message: /FLIP_GATEWAY_GPUS/ });
  t.throws(() => parseGpus("FLIP_GATEWAY_GPUS", "two"), { message: /FLIP_GATEWAY_GPUS/ });
});
