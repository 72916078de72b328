import { execFileSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import { Code, ConnectError, createClient, createRouterTransport, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { DataAccessService } from "@flip/gen/flip/dataaccess/v1/data_access_pb.js";
import { RuntimeService } from "@flip/gen/flip/runtime/v1/runtime_pb.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { serve, type RunningServer } from "@flip/shared/server/serve.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import type { TaskLogEntry } from "../tasks/task-log.js";
import { ImagingService } from "@flip/gen/flip/imaging/v1/imaging_pb.js";
import { imagingServiceImages } from "./images.js";
import { TrainingJob } from "./job.js";
import { ReportBuffer, SeqClock } from "./reports.js";
import { startRuntimeServer } from "./runtime-server.js";
import { WorkloadOutput } from "./workload-output.js";
import { JobWorkspace, type JobSettings } from "./workspace.js";

interface Ctx {
  job: TrainingJob;
  /** Every server started (ava copies the context per test: a test adds here, the after hook closes them all). */
  servers: RunningServer[];
  client: Client<typeof RuntimeService>;
  taskLog: Omit<TaskLogEntry, "at">[];
  start(): Promise<RunningServer>;
}
const test = anyTest.serial as TestFn<Ctx>;
const log = createLogger({ service: "test", level: "silent" });

/** The imaging service as the gateway sees it: one project's images; records which projects were asked for. */
const fakeImagingProjects = new Set<string>();
const fakeImaging = createClient(
  ImagingService,
  createRouterTransport(({ service }) =>
    service(ImagingService, {
      listProjectImages(req) {
        fakeImagingProjects.add(req.projectId);
        if (req.projectId !== "proj1") throw new ConnectError("no import", Code.FailedPrecondition);
        return { images: [{ imageId: "n-1", format: "nifti", sizeBytes: 2_500_000n, studyKey: "2.25.1", seriesKey: "2.25.2", modality: "CT" }] };
      },
      async *readImage(req) {
        fakeImagingProjects.add(req.projectId);
        if (req.projectId !== "proj1" || req.imageId !== "n-1") throw new ConnectError(`no image "${req.imageId}" in this project's cohort`, Code.NotFound);
        yield { data: Buffer.alloc(2_500_000, 7), sizeBytes: 2_500_000n };
      },
    }),
  ),
);

const SETTINGS: JobSettings = {
  jobId: "7b0c5a52-0000-4000-8000-000000000001",
  projectId: "proj1",
  image: "flip/train-numpy:1",
  gpus: 0,
  gpuIndices: [],
  configJson: '{"lr":0.1}',
  rounds: 3,
  evaluate: false,
  roundTimeoutSeconds: 60,
  bundleArtifactId: "",
};

/** A safetensors file of one F32 tensor. */
function safetensors(values: number[]): Buffer {
  let header = JSON.stringify({ w: { dtype: "F32", shape: [values.length], data_offsets: [0, values.length * 4] } });
  header += " ".repeat((8 - (header.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, Buffer.from(header), Buffer.from(new Float32Array(values).buffer)]);
}

function socketClient(socketPath: string, token: string, kind: "connect" | "grpc" = "connect"): Client<typeof RuntimeService> {
  const interceptors = [bearerAuth(token)];
  return createClient(
    RuntimeService,
    kind === "connect"
      ? createConnectTransport({ baseUrl: "http://localhost", httpVersion: "1.1", nodeOptions: { socketPath }, interceptors })
      : createGrpcTransport({ baseUrl: "http://localhost", nodeOptions: { createConnection: () => net.connect(socketPath) }, interceptors }),
  );
}

async function* chunks(...messages: { round?: number; sampleCount?: bigint; data: Uint8Array }[]) {
  for (const m of messages) yield { round: m.round ?? 0, sampleCount: m.sampleCount ?? 0n, data: m.data };
}

test.before(async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), "flip-rt-"));
  const taskLog: Ctx["taskLog"] = [];
  const reports = new ReportBuffer(new SeqClock(), { logBytesPerRound: 1024 });
  const job = await TrainingJob.open(
    {
      workspace: new JobWorkspace(path.join(root, "training"), SETTINGS.jobId),
      reports,
      maxUpdateBytes: 1024 * 1024,
      output: (j) => new WorkloadOutput({ jobId: SETTINGS.jobId, taskLog: { append: (e) => taskLog.push(e) }, reports, forward: true, where: () => ({ round: j.round, taskId: "t1", attempt: 1 }) }),
    },
    SETTINGS,
  );
  const start = () => startRuntimeServer({ job, trustCode: "north", dataAccess: undefined, images: imagingServiceImages(fakeImaging, SETTINGS.projectId, "north"), log });
  t.context = { job, servers: [await start()], client: socketClient(job.workspace.socketPath, job.token), taskLog, start };
});

test.after.always(async (t) => {
  for (const s of t.context.servers) await s.close(100);
});

test("every call needs the job's token", async (t) => {
  const stranger = socketClient(t.context.job.workspace.socketPath, "not-the-token");
  const err = await connectErrorOf(stranger.getConfig({}));
  t.is(err.code, Code.Unauthenticated);
  t.regex(err.rawMessage, /FLIP_RUNTIME_TOKEN/);
});

test("the socket is connectable by any user (the token is the lock)", async (t) => {
  t.is((await stat(t.context.job.workspace.socketPath)).mode & 0o777, 0o666);
});

test("GetConfig answers the job's settings over HTTP/1.1 and over h2c", async (t) => {
  const c = await t.context.client.getConfig({});
  t.like(c, { jobId: SETTINGS.jobId, projectId: "proj1", trustCode: "north", rounds: 3, configJson: '{"lr":0.1}', mode: "train", gpus: 0, currentRound: 0 });
  const h2 = socketClient(t.context.job.workspace.socketPath, t.context.job.token, "grpc");
  t.is((await h2.getConfig({})).jobId, SETTINGS.jobId);
});

test("GetGlobalWeights waits for the round, then streams its weights in chunks with the size first, naming the round's trace", async (t) => {
  const { job, client } = t.context;
  const big = safetensors(Array.from({ length: 300_000 }, (_, i) => i));
  await mkdir(path.dirname(job.workspace.weightsPath(1)), { recursive: true });
  await writeFile(job.workspace.weightsPath(1), big);
  const got: { round: number; size: bigint; data: Buffer }[] = [];
  let headers: Headers | undefined;
  const call = (async () => {
    for await (const m of client.getGlobalWeights({ round: 0 }, { onHeader: (h) => (headers = h) })) got.push({ round: m.round, size: m.sizeBytes, data: Buffer.from(m.data) });
  })();
  await new Promise((r) => setTimeout(r, 100));
  t.is(got.length, 0, "nothing before the round opens");
  const roundTrace = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "flip=1" };
  await job.openRound(1, true, SETTINGS, roundTrace);
  await call;
  t.is(headers?.get("traceparent"), roundTrace.traceparent, "the workload's calls for the round continue the round's trace");
  t.is(headers?.get("tracestate"), roundTrace.tracestate);
  t.true(got.length >= 2);
  t.true(got.every((m) => m.round === 1 && m.data.length <= 1024 * 1024));
  t.is(got[0]!.size, BigInt(big.length));
  t.deepEqual(Buffer.concat(got.map((m) => m.data)), big);
});

test("PushUpdate refuses the wrong round, a missing sample count and malformed bytes, with what to fix", async (t) => {
  const { client } = t.context;
  const wrong = await connectErrorOf(client.pushUpdate(chunks({ round: 2, sampleCount: 10n, data: safetensors([1]) })));
  t.is(wrong.code, Code.InvalidArgument);
  t.regex(wrong.rawMessage, /round 2 has not started at this trust \(it is on round 1\)/);
  const noCount = await connectErrorOf(client.pushUpdate(chunks({ round: 1, data: safetensors([1]) })));
  t.is(noCount.code, Code.InvalidArgument);
  t.regex(noCount.rawMessage, /sample_count/);
  const garbage = await connectErrorOf(client.pushUpdate(chunks({ round: 1, sampleCount: 10n, data: Buffer.from("not safetensors at all") })));
  t.is(garbage.code, Code.InvalidArgument);
  t.regex(garbage.rawMessage, /not a valid safetensors file/);
  t.is(t.context.job.roundResult(1), undefined);
});

test("PushUpdate persists the update before it answers, and a second push for the round is refused", async (t) => {
  const { job, client } = t.context;
  const update = safetensors([4, 5, 6, 7]);
  const res = await client.pushUpdate(chunks({ round: 1, sampleCount: 42n, data: update.subarray(0, 10) }, { data: update.subarray(10) }));
  t.is(res.sizeBytes, BigInt(update.length));
  t.deepEqual(await readFile(job.workspace.updatePath(1)), update);
  t.deepEqual(job.roundResult(1), { samples: 42n, evaluated: false });
  t.deepEqual((await job.workspace.roundsDone()).get(1), { samples: 42n, evaluated: false });
  const again = await connectErrorOf(client.pushUpdate(chunks({ round: 1, sampleCount: 42n, data: update })));
  t.is(again.code, Code.FailedPrecondition);
  t.regex(again.rawMessage, /already received/);
});

test("after its update, a workload asking for round 0 waits for the next round", async (t) => {
  const { job, client } = t.context;
  const next = (async () => {
    const out = [];
    for await (const m of client.getGlobalWeights({ round: 0 })) out.push(m);
    return out;
  })();
  await new Promise((r) => setTimeout(r, 100));
  await job.openRound(2, false, SETTINGS);
  const messages = await next;
  t.is(messages.length, 1);
  t.like(messages[0], { round: 2, done: false, sizeBytes: 0n });
  t.is(messages[0]!.data.length, 0);
  const old = await connectErrorOf((async () => {
    for await (const _ of client.getGlobalWeights({ round: 1 })) void _;
  })());
  t.is(old.code, Code.FailedPrecondition);
});

test("metrics, events and logs are checked, buffered with increasing seq, and logs kept in the task log", async (t) => {
  const { job, client, taskLog } = t.context;
  job.reports.takeAll();
  t.is((await connectErrorOf(client.reportMetrics({ metrics: [{ label: " ", value: 1 }] }))).code, Code.InvalidArgument);
  t.regex((await connectErrorOf(client.reportMetrics({ metrics: [{ label: "loss", value: Number.NaN }] }))).rawMessage, /loss.*not a finite number/);
  t.is((await connectErrorOf(client.writeLog({ lines: ["x".repeat(5000)] }))).code, Code.InvalidArgument);
  t.is((await connectErrorOf(client.reportEvent({ kind: "" }))).code, Code.InvalidArgument);
  await client.reportMetrics({ metrics: [{ label: "loss", value: 0.5 }, { label: "acc", value: 0.9, round: 1, xLabel: "epoch", xValue: 3 }] });
  await client.reportEvent({ kind: "checkpoint", message: "saved", details: { epoch: "3" } });
  await client.writeLog({ lines: ["hello from the workload"] });
  const report = job.reports.takeAll();
  t.deepEqual(report.metrics.map((m) => [m.label, m.value, m.round, m.xLabel, m.xValue]), [["loss", 0.5, 2, "", 0], ["acc", 0.9, 1, "epoch", 3]]);
  t.like(report.events[0], { kind: "checkpoint", round: 2, message: "saved", details: { epoch: "3" } });
  t.deepEqual(report.logs.flatMap((l) => l.lines), ["hello from the workload"]);
  const seqs = [...report.metrics, ...report.events, ...report.logs].map((i) => i.seq);
  t.deepEqual([...seqs].sort((a, b) => (a < b ? -1 : 1)), seqs);
  job.output.flush();
  t.true(taskLog.some((e) => e.event === "workload_output" && e.lines?.includes("hello from the workload") && e.jobId === SETTINGS.jobId));
});

test("GetCohort without a data-access service says so", async (t) => {
  const err = await connectErrorOf((async () => {
    for await (const _ of t.context.client.getCohort({})) void _;
  })());
  t.is(err.code, Code.FailedPrecondition);
  t.regex(err.rawMessage, /no data-access service is configured at trust north/);
});

test("images come from the imaging service for the job's own project only", async (t) => {
  const { client } = t.context;
  const { images } = await client.listImages({});
  t.deepEqual(
    images.map((i) => [i.imageId, i.format, i.sizeBytes, i.studyKey, i.seriesKey, i.modality]),
    [["n-1", "nifti", 2_500_000n, "2.25.1", "2.25.2", "CT"]],
  );
  const parts = [];
  for await (const m of client.readImage({ imageId: "n-1" })) parts.push(Buffer.from(m.data));
  t.deepEqual(Buffer.concat(parts), Buffer.alloc(2_500_000, 7));
  t.true(parts.length > 1, "large images arrive in chunks");
  for (const imageId of ["missing", "n-other"]) {
    const err = await connectErrorOf((async () => {
      for await (const _ of client.readImage({ imageId })) void _;
    })());
    t.is(err.code, Code.NotFound, imageId);
  }
  t.deepEqual([...fakeImagingProjects], [SETTINGS.projectId]);
});

test("a restarted server on the same socket path is reached again, with the same token", async (t) => {
  await t.context.servers[0]!.close(100);
  await t.throwsAsync(t.context.client.getConfig({}));
  t.context.servers.push(await t.context.start());
  t.is((await t.context.client.getConfig({})).currentRound, 2);
});

test("when the job ends, a waiting GetGlobalWeights answers done and GetConfig refuses", async (t) => {
  const { job, client } = t.context;
  const waiting = (async () => {
    const out = [];
    for await (const m of client.getGlobalWeights({ round: 3 })) out.push(m);
    return out;
  })();
  await new Promise((r) => setTimeout(r, 100));
  job.end();
  const messages = await waiting;
  t.deepEqual(messages.map((m) => m.done), [true]);
  t.is((await connectErrorOf(client.getConfig({}))).code, Code.FailedPrecondition);
  t.true((await connectErrorOf(client.pushUpdate(chunks({ round: 2, sampleCount: 1n, data: safetensors([1]) })))) instanceof ConnectError);
});

test("a socket file left by a dead process is replaced; one a live server holds is not", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-sock-"));
  const stale = path.join(dir, "stale.sock");
  // Bound and never closed: the file stays after the process ends, as after a crash.
  execFileSync("python3", ["-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`]);
  t.true((await stat(stale)).isSocket());
  const server = await serve({ path: stale, services: [], routes: () => undefined, log });
  t.context.servers.push(server);
  t.is(server.url, `unix:${stale}`);
  await t.throwsAsync(serve({ path: stale, services: [], routes: () => undefined, log }), { message: /EADDRINUSE/ });
});

test("GetCohort streams the frozen cohort's rows from data-access for the job's project, and passes its refusals on", async (t) => {
  const asked: { projectId: string; batchSize: number }[] = [];
  let refuse = false;
  const dataAccess = createClient(
    DataAccessService,
    createRouterTransport(({ service }) =>
      service(DataAccessService, {
        async *getCohortRows(req) {
          asked.push({ projectId: req.projectId, batchSize: req.batchSize });
          if (refuse) throw new ConnectError("fewer members than the threshold remain", Code.FailedPrecondition);
          yield { columns: ["person_id", "age"], rows: [{ values: ["1", "40"] }, { values: ["2", "51"] }] };
          yield { columns: ["person_id", "age"], rows: [{ values: ["3", "null"] }] };
        },
      }),
    ),
  );
  const root = await mkdtemp(path.join(os.tmpdir(), "flip-rt-cohort-"));
  const reports = new ReportBuffer(new SeqClock(), { logBytesPerRound: 0 });
  const job = await TrainingJob.open(
    {
      workspace: new JobWorkspace(root, SETTINGS.jobId),
      reports,
      maxUpdateBytes: 1024,
      output: () => new WorkloadOutput({ jobId: SETTINGS.jobId, taskLog: { append() {} }, reports, forward: false, where: () => ({ round: 0, taskId: "", attempt: 0 }) }),
    },
    SETTINGS,
  );
  t.context.servers.push(await startRuntimeServer({ job, trustCode: "north", dataAccess, images: undefined, log }));
  const client = socketClient(job.workspace.socketPath, job.token);
  const rows: string[][] = [];
  for await (const batch of client.getCohort({ batchSize: 2 })) {
    t.deepEqual(batch.columns, ["person_id", "age"]);
    rows.push(...batch.rows.map((r) => r.values));
  }
  t.deepEqual(rows, [["1", "40"], ["2", "51"], ["3", "null"]]);
  t.deepEqual(asked, [{ projectId: "proj1", batchSize: 2 }]);
  refuse = true;
  const err = await connectErrorOf((async () => {
    for await (const _ of client.getCohort({})) void _;
  })());
  t.is(err.code, Code.FailedPrecondition);
  t.is(err.rawMessage, "cohort rows at trust north: fewer members than the threshold remain");
});
