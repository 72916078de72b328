import test from "ava";
import { containerName, containerOptions, LABEL_GATEWAY, LABEL_JOB, LABEL_MANAGED, LABEL_TRUST } from "./containers.js";
import { readTrainingPolicy } from "./policy.js";
import { JobWorkspace, type JobSettings } from "./workspace.js";

const settings: JobSettings = {
  jobId: "0d6f4b9e-5a1c-4c3e-9a52-1f1e2d3c4b5a",
  projectId: "p1",
  image: "flip/train-numpy:1",
  gpus: 0,
  gpuIndices: [],
  configJson: "{}",
  rounds: 3,
  evaluate: false,
  roundTimeoutSeconds: 600,
  bundleArtifactId: "",
};
const workspace = new JobWorkspace("/state/training", settings.jobId);
const plan = (s: Partial<JobSettings> = {}) =>
  containerOptions({ trustCode: "north", gateway: "g1", settings: { ...settings, ...s }, workspace, token: "tok", policy: readTrainingPolicy({ FLIP_TRAINING_CPUS: "1.5" }) });

test("every workload container is locked down the same way", (t) => {
  const o = plan();
  t.is(o.name, "flip-north-0d6f4b9e");
  t.is(containerName("north", settings.jobId), "flip-north-0d6f4b9e");
  t.is(o.User, "65534:65534");
  t.deepEqual(o.Labels, { [LABEL_MANAGED]: "true", [LABEL_JOB]: settings.jobId, [LABEL_TRUST]: "north", [LABEL_GATEWAY]: "g1" });
  const h = o.HostConfig!;
  t.is(h.NetworkMode, "none");
  t.true(h.ReadonlyRootfs);
  t.deepEqual(h.CapDrop, ["ALL"]);
  t.deepEqual(h.SecurityOpt, ["no-new-privileges"]);
  t.is(h.PidsLimit, 256);
  t.is(h.Memory, 4096 * 1024 * 1024);
  t.is(h.MemorySwap, h.Memory);
  t.is(h.NanoCpus, 1.5e9);
  t.true(h.Init);
  t.regex(h.Tmpfs!["/tmp"]!, /noexec/);
  t.is(h.DeviceRequests, undefined);
  t.deepEqual(
    h.Mounts!.map((m) => [m.Target, m.Source, m.ReadOnly]),
    [
      ["/flip/bundle", workspace.bundleDir, true],
      ["/flip/runtime", workspace.runtimeDir, true],
      ["/flip/scratch", workspace.scratchDir, false],
    ],
  );
  t.true(o.Env!.includes("FLIP_RUNTIME_SOCKET=/flip/runtime/runtime.sock"));
  t.true(o.Env!.includes("FLIP_RUNTIME_TOKEN=tok"));
  t.true(o.Env!.includes(`FLIP_JOB_ID=${settings.jobId}`));
  t.true(o.Env!.includes("OMP_NUM_THREADS=2"));
  t.true(o.Env!.includes("PYTHONPATH=/flip/bundle"));
});

test("no image folder is mounted: images reach a workload only through the runtime API", (t) => {
  const o = plan();
  t.deepEqual(
    o.HostConfig!.Mounts!.map((m) => m.Target),
    ["/flip/bundle", "/flip/runtime", "/flip/scratch"],
  );
});

test("a GPU job gets exactly the devices the hub assigned", (t) => {
  t.deepEqual(plan({ gpus: 2, gpuIndices: [1, 3] }).HostConfig!.DeviceRequests, [{ Driver: "nvidia", DeviceIDs: ["1", "3"], Capabilities: [["gpu"]] }]);
  t.deepEqual(plan({ gpus: 1 }).HostConfig!.DeviceRequests, [{ Driver: "nvidia", Count: 1, Capabilities: [["gpu"]] }]);
});

test("the container is given the round's trace context, and nothing when there is none", (t) => {
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const policy = readTrainingPolicy({});
  const traced = containerOptions({ trustCode: "north", gateway: "g1", settings, workspace, token: "tok", policy, traceContext: { traceparent, tracestate: "flip=1" } });
  t.true(traced.Env!.includes(`TRACEPARENT=${traceparent}`));
  t.true(traced.Env!.includes("TRACESTATE=flip=1"));
  t.false(plan().Env!.some((e) => /^TRACE/.test(e)));
});
