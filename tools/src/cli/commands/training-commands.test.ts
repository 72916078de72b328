/**
 * `flip model …` and `flip job …` against an in-process fake of ModelService and JobService: what the CLI
 * sends, what it prints (and that --json prints nothing else), its exit codes, Ctrl-C. The same commands
 * against the real hub are tested end to end in test/training/.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Writable } from "node:stream";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import {
  CreateJobRequestSchema,
  CreateModelRequestSchema,
  JobEventKind,
  JobKind,
  JobSchema,
  JobService,
  JobState,
  ModelService,
  ParticipantState,
  WatchJobResponseSchema,
  type CreateJobRequest,
  type CreateModelRequest,
  type ListMetricsRequest,
  type WatchJobResponse,
} from "@flip/gen/flip/hub/v1/training_pb.js";
import { runCli } from "../main.js";
import { runCliCaptured } from "../run-captured.js";
import { serveFakeHub } from "../testing/fake-hub.js";

const test = anyTest as TestFn<{ dir: string }>;

test.beforeEach((t) => {
  t.context.dir = mkdtempSync(path.join(os.tmpdir(), "flip-cli-training-"));
});
test.afterEach.always((t) => rmSync(t.context.dir, { recursive: true, force: true }));

const JOB_ID = "11111111-1111-4111-8111-111111111111";
const MODEL_ID = "22222222-2222-4222-8222-222222222222";
const NORTH = "00000000-0000-4000-8000-00000000000a";
const SOUTH = "00000000-0000-4000-8000-00000000000b";
const RITA = "00000000-0000-4000-8000-0000000000c1";

interface FakeServices {
  models?: Partial<ServiceImpl<typeof ModelService>>;
  jobs?: Partial<ServiceImpl<typeof JobService>>;
}

/** The fakes on a hub of their own; returns the env that points `flip` at it. */
async function fakeHub(t: ExecutionContext<{ dir: string }>, services: FakeServices): Promise<NodeJS.ProcessEnv> {
  return await serveFakeHub(t, (router: ConnectRouter) => {
    if (services.models) router.service(ModelService, services.models);
    if (services.jobs) router.service(JobService, services.jobs);
  });
}

const job = (init: MessageInitShape<typeof JobSchema> = {}) =>
  create(JobSchema, {
    id: JOB_ID,
    modelId: MODEL_ID,
    modelName: "numpy",
    kind: JobKind.TRAIN,
    rounds: 2,
    minUpdates: 2,
    roundTimeoutSeconds: 600,
    participants: [
      { trustId: NORTH, trustCode: "north", state: ParticipantState.WAITING },
      { trustId: SOUTH, trustCode: "south", state: ParticipantState.WAITING },
    ],
    ...init,
  });

const item = (i: MessageInitShape<typeof WatchJobResponseSchema>["item"]) => create(WatchJobResponseSchema, { item: i } as MessageInitShape<typeof WatchJobResponseSchema>);
const event = (seq: number, kind: JobEventKind, message: string, extra: { trustId?: string; round?: number } = {}) =>
  item({ case: "event", value: { seq: BigInt(seq), kind, message, ...extra } });
const metric = (trustId: string, round: number, label: string, value: number) => item({ case: "metric", value: { trustId, round, label, value, attributes: { trust: trustId === NORTH ? "north" : "south" } } });

/** A whole job, queued to completed, as WatchJob replays it. */
function story(end: JobState, reason: string): WatchJobResponse[] {
  return [
    event(1, JobEventKind.QUEUED, "queued for north, south"),
    item({ case: "job", value: job({ state: JobState.QUEUED, queuePosition: 2 }) }),
    event(2, JobEventKind.STARTED, "started on 2 trusts"),
    event(3, JobEventKind.ROUND_STARTED, "round 1 of 2 started", { round: 1 }),
    item({ case: "job", value: job({ state: JobState.RUNNING, currentRound: 1, participants: [{ trustId: NORTH, trustCode: "north", state: ParticipantState.TRAINING, progress: 0.5 }, { trustId: SOUTH, trustCode: "south", state: ParticipantState.WAITING }] }) }),
    metric(NORTH, 1, "loss", 0.5),
    metric(SOUTH, 1, "loss", 0.25),
    event(4, JobEventKind.UPDATE_RECEIVED, "north sent its round 1 update (60 samples)", { trustId: NORTH, round: 1 }),
    event(5, JobEventKind.TRUST_FAILED, "south missed round 1: deadline passed", { trustId: SOUTH, round: 1 }),
    event(6, JobEventKind.ENDED, `${end === JobState.COMPLETED ? "completed" : end === JobState.FAILED ? "failed" : "aborted"}: ${reason}`),
    item({
      case: "job",
      value: job({
        state: end,
        currentRound: 1,
        endReason: reason,
        participants: [
          { trustId: NORTH, trustCode: "north", state: ParticipantState.DONE, updates: 1 },
          { trustId: SOUTH, trustCode: "south", state: ParticipantState.DONE, missed: 1, lastMissReason: "deadline passed" },
        ],
      }),
    }),
  ];
}

const lines = (s: string) => s.split("\n").filter(Boolean);

// --- models ---------------------------------------------------------------------------------------

function safetensors(): Buffer {
  const header = Buffer.from(JSON.stringify({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }).padEnd(48, " "));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([length, header, Buffer.alloc(4)]);
}

test("model create uploads the files, config and weights, and retries once with the same idempotency key when the hub drops the call", async (t) => {
  const files = path.join(t.context.dir, "src");
  mkdirSync(path.join(files, ".git"), { recursive: true });
  writeFileSync(path.join(files, "train.py"), "print('train')\n");
  writeFileSync(path.join(files, ".git", "HEAD"), "ref\n");
  writeFileSync(path.join(t.context.dir, "config.json"), '{"local_epochs": 2}');
  writeFileSync(path.join(t.context.dir, "init.safetensors"), safetensors());
  const calls: CreateModelRequest[] = [];
  const env = await fakeHub(t, {
    models: {
      createModel(req) {
        calls.push(create(CreateModelRequestSchema, req));
        if (calls.length === 1) throw new ConnectError("connection reset", Code.Unavailable);
        return { model: { id: MODEL_ID, name: req.name, image: req.image, filePaths: req.files.map((f) => f.path), bundleSha256: "ab".repeat(32), bundleSizeBytes: 15n } };
      },
    },
  });
  const run = await runCliCaptured(
    ["model", "create", "--project", "p1", "--name", "numpy", "--image", "flip/train-numpy:1", "--files", files, "--config", path.join(t.context.dir, "config.json"), "--weights", path.join(t.context.dir, "init.safetensors"), "--json"],
    env,
  );
  t.is(run.code, 0, run.err);
  const out = JSON.parse(run.out) as { model: { id: string; filePaths: string[] } };
  t.is(out.model.id, MODEL_ID);
  t.deepEqual(out.model.filePaths, ["train.py"]);
  t.is(calls.length, 2);
  t.regex(calls[0]!.idempotencyKey, /^[0-9a-f-]{36}$/);
  t.is(calls[1]!.idempotencyKey, calls[0]!.idempotencyKey);
  t.is(calls[0]!.configJson, '{"local_epochs": 2}');
  t.deepEqual(Buffer.from(calls[0]!.initialWeights), safetensors());
  t.regex(run.err, /left out 1 hidden entry: \.git/);
  t.regex(run.err, /retrying once with the same idempotency key/);

  const human = await runCliCaptured(["model", "create", "--project", "p1", "--name", "numpy", "--image", "flip/train-numpy:1", "--files", files], env);
  t.is(human.code, 0, human.err);
  t.regex(human.out, /created model numpy \(2222.*\)\nimage: flip\/train-numpy:1\nfiles: 1 \(15 B\), bundle sha256 abab/);
});

test("model create refuses a broken config before it contacts the hub, naming the file", async (t) => {
  writeFileSync(path.join(t.context.dir, "config.json"), "{ local_epochs: 2 }");
  let calls = 0;
  const env = await fakeHub(t, { models: { createModel: () => (calls++, {}) } });
  const run = await runCliCaptured(["model", "create", "--project", "p1", "--name", "n", "--image", "i", "--config", path.join(t.context.dir, "config.json")], env);
  t.is(run.code, 2);
  t.regex(run.err, /--config .*config\.json: not valid JSON/);
  t.is(calls, 0);
});

test("model list, get and delete print tables and plain JSON, get naming the owner by email; a hub refusal exits 1 with its code", async (t) => {
  const model = {
    id: MODEL_ID,
    projectId: "p1",
    name: "numpy",
    ownerId: RITA,
    owner: { userId: RITA, email: "rita@uni.test", name: "Rita" },
    image: "flip/train-numpy:1",
    configJson: '{"local_epochs": 2}',
    filePaths: ["train.py"],
    bundleSizeBytes: 2048n,
    bundleSha256: "cd".repeat(32),
  };
  const env = await fakeHub(t, {
    models: {
      listModels: () => ({ models: [model] }),
      getModel: () => ({ model }),
      deleteModel(req) {
        if (req.modelId !== MODEL_ID) throw new ConnectError(`model ${req.modelId} not found`, Code.NotFound);
        return {};
      },
    },
  });
  const list = await runCliCaptured(["model", "list", "--project", "p1"], env);
  t.regex(list.out, /ID\s+NAME\s+IMAGE\s+FILES\s+CREATED\n2222\S+\s+numpy\s+flip\/train-numpy:1\s+1 \(2\.0 KiB\)/);
  const get = await runCliCaptured(["model", "get", MODEL_ID], env);
  t.regex(get.out, /config: \{"local_epochs": 2\}/);
  t.regex(get.out, /owner: rita@uni\.test /);
  t.notRegex(get.out, new RegExp(RITA));
  t.is((JSON.parse((await runCliCaptured(["model", "get", MODEL_ID, "--json"], env)).out) as { model: { ownerId: string } }).model.ownerId, RITA);
  t.regex(get.out, /^ {2}train\.py$/m);
  t.deepEqual(JSON.parse((await runCliCaptured(["model", "delete", MODEL_ID, "--json"], env)).out), { modelId: MODEL_ID, deleted: true });
  const missing = await runCliCaptured(["model", "delete", "nope"], env);
  t.is(missing.code, 1);
  t.regex(missing.err, /model nope not found \[NotFound\]/);
});

// --- job start --------------------------------------------------------------------------------------

test("job start sends the trusts, rounds, k of n, round timeout, GPUs and kind, and prints the queued job", async (t) => {
  const calls: CreateJobRequest[] = [];
  const env = await fakeHub(t, {
    jobs: {
      createJob(req) {
        calls.push(create(CreateJobRequestSchema, req));
        return { job: job({ state: JobState.QUEUED, queuePosition: 2 }) };
      },
    },
  });
  const run = await runCliCaptured(["job", "start", "--model", MODEL_ID, "--trusts", "north,south", "--rounds", "5", "--min-trusts", "1", "--round-timeout", "1h30m", "--gpus", "1"], env);
  t.is(run.code, 0, run.err);
  t.regex(run.out, /job 1111\S+ \(train numpy\): queued, position 2\nfollow it: flip job watch 1111/);
  const req = calls[0]!;
  t.deepEqual(
    { trusts: req.trusts, rounds: req.rounds, minUpdates: req.minUpdates, timeout: req.roundTimeoutSeconds, gpus: req.gpusPerTrust, kind: req.kind },
    { trusts: ["north", "south"], rounds: 5, minUpdates: 1, timeout: 5400, gpus: 1, kind: JobKind.TRAIN },
  );
  t.regex(req.idempotencyKey, /^[0-9a-f-]{36}$/);

  const evaluate = await runCliCaptured(["job", "start", "--model", MODEL_ID, "--trusts", "north", "--type", "evaluate", "--json"], env);
  t.is(evaluate.code, 0, evaluate.err);
  t.is((JSON.parse(evaluate.out) as { job: { id: string } }).job.id, JOB_ID);
  t.is(calls[1]!.kind, JobKind.EVALUATE);
  t.is(calls[1]!.rounds, 0, "the hub's default applies when --rounds is left out");
});

test("job start refuses bad flags with exit code 2 and a message naming the flag", async (t) => {
  const env = await fakeHub(t, { jobs: {} });
  const cases: [string[], RegExp][] = [
    [["--trusts", "north", "--round-timeout", "600"], /--round-timeout: expected a duration such as 90s/],
    [["--trusts", "north", "--round-timeout", "5s"], /--round-timeout: must be from 10s to 7 days/],
    [["--trusts", "north,south", "--min-trusts", "3"], /--min-trusts: expected a whole number from 1 to 2/],
    [["--trusts", "north", "--type", "evaluate", "--rounds", "4"], /an evaluation job has exactly one round/],
    [["--trusts", "north", "--type", "finetune"], /--type: expected train or evaluate/],
    [["--trusts", "north,north"], /"north" is named twice/],
    [[], /--trusts is required/],
  ];
  for (const [flags, message] of cases) {
    const run = await runCliCaptured(["job", "start", "--model", MODEL_ID, ...flags], env);
    t.is(run.code, 2, flags.join(" "));
    t.regex(run.err, message);
  }
});

test("a trust the hub refuses is reported with the hub's reason and exit code 1", async (t) => {
  const env = await fakeHub(t, {
    jobs: { createJob: () => Promise.reject(new ConnectError('trust "south" has not approved this project (its decision: declined)', Code.FailedPrecondition)) },
  });
  const run = await runCliCaptured(["job", "start", "--model", MODEL_ID, "--trusts", "north,south"], env);
  t.is(run.code, 1);
  t.is(run.err, 'error: trust "south" has not approved this project (its decision: declined) [FailedPrecondition]\n');
});

// --- job watch --------------------------------------------------------------------------------------

test("job watch --json prints one JSON object per item and nothing else, and its exit code says how the job ended", async (t) => {
  for (const [state, code] of [
    [JobState.COMPLETED, 0],
    [JobState.FAILED, 3],
    [JobState.ABORTED, 4],
  ] as const) {
    const env = await fakeHub(t, {
      jobs: {
        async *watchJob() {
          yield* story(state, "the end");
        },
      },
    });
    const run = await runCliCaptured(["job", "watch", JOB_ID, "--json"], env);
    t.is(run.code, code, run.err);
    const items = lines(run.out).map((l) => JSON.parse(l) as Record<string, unknown>);
    t.is(items.length, story(state, "the end").length);
    t.deepEqual(Object.keys(items[0]!), ["event"]);
    t.deepEqual(Object.keys(items.at(-1)!), ["job"]);
    t.regex(run.err, /job 1111\S+ \(train numpy\): (completed|failed|aborted): the end/);
  }
});

test("job watch in a log appends lines: queue position, bars, metrics, events and the final state", async (t) => {
  const env = await fakeHub(t, {
    jobs: {
      async *watchJob() {
        yield* story(JobState.FAILED, "round 1 got 1 of 2 updates");
      },
    },
  });
  const run = await runCliCaptured(["job", "watch", JOB_ID], env);
  t.is(run.code, 3);
  const out = lines(run.out).map((l) => l.replace(/^--:--:--  /, ""));
  t.deepEqual(out, [
    "queued for north, south",
    "queued: position 2",
    "started on 2 trusts",
    "round 1 of 2 started",
    "round 1  north  [##########----------]  50%  training",
    "round 1  south  [--------------------]   0%  waiting",
    "round 1  north  metrics: loss 0.5",
    "round 1  south  metrics: loss 0.25",
    "north sent its round 1 update (60 samples)",
    "south missed round 1: deadline passed",
    "job failed: round 1 got 1 of 2 updates",
    "job 11111111-1111-4111-8111-111111111111 (train numpy): failed: round 1 got 1 of 2 updates",
    "  north: 1 update, 0 missed",
    "  south: 0 updates, 1 missed (last: deadline passed)",
  ]);
});

test("job watch on a terminal redraws its block in place and leaves the final one on screen", async (t) => {
  const env = await fakeHub(t, {
    jobs: {
      async *watchJob() {
        for (const i of story(JobState.COMPLETED, "2 rounds trained")) {
          yield i;
          await new Promise((r) => setTimeout(r, 30));
        }
      },
    },
  });
  let out = "";
  const tty = Object.assign(new Writable({ write: (c: Buffer, _e, done) => ((out += c.toString()), done()) }), { isTTY: true, columns: 100 });
  const err = new Writable({ write: (_c, _e, done) => done() });
  const code = await runCli(["job", "watch", JOB_ID], env, tty, err);
  t.is(code, 0);
  t.true(out.includes("\x1b["), "redraws with cursor movement");
  const finalScreen = out.slice(out.lastIndexOf("\x1b[J") + 3);
  t.regex(finalScreen, /job 1111\S+ \(train numpy\): completed: 2 rounds trained\n {2}north {2}\[#{20}\] 100% {2}done \(1 update, 0 missed\)/);
  t.regex(finalScreen, /latest metrics\s+loss\s+round\n {2}north\s+0\.5\s+1\n {2}south\s+0\.25\s+1/);
});

test("job watch reconnects when the hub drops the stream, and shows nothing twice", async (t) => {
  const all = story(JobState.COMPLETED, "done");
  let calls = 0;
  const env = await fakeHub(t, {
    jobs: {
      async *watchJob() {
        calls++;
        if (calls === 1) {
          yield* all.slice(0, 6); // up to the first metric
          throw new ConnectError("hub restarting", Code.Unavailable);
        }
        yield* all; // a new connection replays everything stored
      },
    },
  });
  const run = await runCliCaptured(["job", "watch", JOB_ID, "--json"], env);
  t.is(run.code, 0, run.err);
  t.is(calls, 2);
  const items = lines(run.out).map((l) => JSON.parse(l) as { event?: { seq: string }; metric?: { label: string; trustId: string } });
  t.deepEqual(items.filter((i) => i.event).map((i) => i.event!.seq), ["1", "2", "3", "4", "5", "6"]);
  t.deepEqual(items.filter((i) => i.metric).map((i) => i.metric!.trustId), [NORTH, SOUTH]);
  t.regex(run.err, /lost the hub \(hub restarting\); reconnecting/);
});

test("a hub that cannot be reached at all fails the watch at once with exit code 1", async (t) => {
  const run = await runCliCaptured(["job", "watch", JOB_ID], { FLIP_HUB_URL: "http://127.0.0.1:1", FLIP_CONFIG_DIR: t.context.dir });
  t.is(run.code, 1);
  t.regex(run.err, /cannot reach the hub/);
});

test.serial("Ctrl-C while watching exits 130 without a stack trace and says the job keeps running", async (t) => {
  let streaming!: () => void;
  const started = new Promise<void>((r) => (streaming = r));
  const env = await fakeHub(t, {
    jobs: {
      async *watchJob(_req, ctx) {
        yield item({ case: "job", value: job({ state: JobState.RUNNING, currentRound: 1 }) });
        streaming();
        await new Promise((r) => ctx.signal.addEventListener("abort", r));
      },
    },
  });
  const before = process.listenerCount("SIGINT");
  const running = runCliCaptured(["job", "watch", JOB_ID], env);
  await started;
  await new Promise((r) => setTimeout(r, 50));
  process.emit("SIGINT");
  const run = await running;
  t.is(run.code, 130);
  t.is(run.err, `stopped watching; job ${JOB_ID} keeps running on the hub (flip job watch ${JOB_ID} to follow it again, flip job abort ${JOB_ID} to stop it)\n`);
  t.is(process.listenerCount("SIGINT"), before);
});

test("job start --watch --json prints the created job and then the watch, one JSON object per line", async (t) => {
  const env = await fakeHub(t, {
    jobs: {
      createJob: () => ({ job: job({ state: JobState.QUEUED, queuePosition: 1 }) }),
      async *watchJob() {
        yield* story(JobState.COMPLETED, "done");
      },
    },
  });
  const run = await runCliCaptured(["job", "start", "--model", MODEL_ID, "--trusts", "north,south", "--watch", "--json"], env);
  t.is(run.code, 0, run.err);
  const items = lines(run.out).map((l) => JSON.parse(l) as { job?: { state: string } });
  t.is(items.length, 1 + story(JobState.COMPLETED, "done").length);
  t.is(items[0]!.job?.state, "JOB_STATE_QUEUED");
});

// --- job get / list / abort / metrics -----------------------------------------------------------------

test("job get shows who created it, each trust's part and the round history; list and abort print the job", async (t) => {
  const full = job({
    createdBy: RITA,
    creator: { userId: RITA, email: "rita@uni.test", name: "Rita" },
    state: JobState.RUNNING,
    currentRound: 2,
    gpusPerTrust: 1,
    participants: [
      { trustId: NORTH, trustCode: "north", gpuIndices: [0, 1], state: ParticipantState.TRAINING, progress: 0.4, updates: 1 },
      { trustId: SOUTH, trustCode: "south", state: ParticipantState.MISSED, missed: 1, lastMissReason: "trust offline" },
    ],
    roundHistory: [{ round: 1, state: "aggregated", updates: 2, samples: 120n }, { round: 2, state: "open" }],
  });
  const env = await fakeHub(t, {
    jobs: {
      getJob: () => ({ job: full }),
      listJobs: (req) => ({ jobs: req.modelId === MODEL_ID ? [full] : [] }),
      abortJob: (req) => ({ job: job({ state: JobState.ABORTED, endReason: `aborted by researcher: ${req.reason}` }) }),
    },
  });
  const get = await runCliCaptured(["job", "get", JOB_ID], env);
  t.regex(get.out, /running, round 2 of 2/);
  t.regex(get.out, /created by: rita@uni\.test$/m);
  t.regex(get.out, /north\s+0,1\s+training\s+40%\s+1\s+0\s+-/);
  t.regex(get.out, /south\s+-\s+missed\s+-\s+0\s+1\s+trust offline/);
  t.regex(get.out, /ROUND\s+STATE\s+UPDATES\s+MISSED\s+SAMPLES.*\n1\s+aggregated\s+2\s+0\s+120/);
  t.regex((await runCliCaptured(["job", "list", "--model", MODEL_ID], env)).out, /1111\S+\s+numpy\s+train\s+running\s+2\/2\s+north,south/);
  t.is((await runCliCaptured(["job", "list", "--model", "other"], env)).out, "no jobs\n");
  const abort = await runCliCaptured(["job", "abort", JOB_ID, "--reason", "wrong config", "--json"], env);
  t.is((JSON.parse(abort.out) as { job: { endReason: string } }).job.endReason, "aborted by researcher: wrong config");
});

test("job metrics pages through every point with the filters given", async (t) => {
  const requests: { label: string; trustId: string; round: number; token: string }[] = [];
  const env = await fakeHub(t, {
    jobs: {
      listMetrics(req: ListMetricsRequest) {
        requests.push({ label: req.label, trustId: req.trustId, round: req.round, token: req.page?.pageToken ?? "" });
        const first = !req.page?.pageToken;
        return {
          metrics: [{ trustId: NORTH, round: 2, label: "loss", value: first ? 0.5 : 0.4, xLabel: "step", xValue: first ? 10 : 20, attributes: { trust: "north" } }],
          page: { nextPageToken: first ? "next" : "" },
        };
      },
    },
  });
  const run = await runCliCaptured(["job", "metrics", JOB_ID, "--label", "loss", "--trust", "north", "--round", "2"], env);
  t.is(run.code, 0, run.err);
  t.deepEqual(requests, [
    { label: "loss", trustId: "north", round: 2, token: "" },
    { label: "loss", trustId: "north", round: 2, token: "next" },
  ]);
  t.regex(run.out, /ROUND\s+TRUST\s+LABEL\s+X\s+VALUE\s+RECORDED\n2\s+north\s+loss\s+step=10\s+0\.5\s+-\n2\s+north\s+loss\s+step=20\s+0\.4/);
  const json = await runCliCaptured(["job", "metrics", JOB_ID, "--json"], env);
  t.is((JSON.parse(json.out) as { metrics: unknown[] }).metrics.length, 2);
  t.is((await runCliCaptured(["job", "metrics", JOB_ID, "--round", "two"], env)).code, 2);
});

// --- job download ------------------------------------------------------------------------------------

function weightsStream(bytes: Buffer, opts: { sha256?: string; chunk?: number; skip?: number } = {}) {
  const chunk = opts.chunk ?? 7;
  const sha256 = opts.sha256 ?? createHash("sha256").update(bytes).digest("hex");
  return async function* () {
    for (let offset = 0; offset < bytes.length; offset += chunk) {
      if (offset === opts.skip) continue;
      yield { round: 2, offset: BigInt(offset), data: bytes.subarray(offset, offset + chunk), sizeBytes: BigInt(bytes.length), sha256: "" };
    }
    yield { round: 2, offset: BigInt(bytes.length), data: new Uint8Array(0), sizeBytes: BigInt(bytes.length), sha256 };
  };
}

test("job download saves the weights once their size and checksum match, and says where", async (t) => {
  const bytes = safetensors();
  const env = await fakeHub(t, { jobs: { downloadWeights: weightsStream(bytes) } });
  const out = path.join(t.context.dir, "model.safetensors");
  const run = await runCliCaptured(["job", "download", JOB_ID, "--out", out, "--json"], env);
  t.is(run.code, 0, run.err);
  t.deepEqual(readFileSync(out), bytes);
  t.deepEqual(JSON.parse(run.out), { jobId: JOB_ID, round: 2, path: out, sizeBytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") });
  const human = await runCliCaptured(["job", "download", JOB_ID, "--out", out], env);
  t.regex(human.out, new RegExp(`saved the round 2 weights of job ${JOB_ID} to ${out}\nsize: ${bytes.length} B \\(${bytes.length} bytes\\)\nsha256: [0-9a-f]{64}\n`));
});

test.serial("Ctrl-C during a download keeps nothing and exits 130", async (t) => {
  let streaming!: () => void;
  const started = new Promise<void>((r) => (streaming = r));
  const env = await fakeHub(t, {
    jobs: {
      async *downloadWeights(_req, ctx) {
        yield { round: 1, offset: 0n, data: new Uint8Array(1024), sizeBytes: 64n * 1024n * 1024n, sha256: "" };
        streaming();
        await new Promise((r) => ctx.signal.addEventListener("abort", r));
      },
    },
  });
  const out = path.join(t.context.dir, "model.safetensors");
  const running = runCliCaptured(["job", "download", JOB_ID, "--out", out], env);
  await started;
  await new Promise((r) => setTimeout(r, 50));
  process.emit("SIGINT");
  const run = await running;
  t.is(run.code, 130);
  t.regex(run.err, /downloading: 1\.0 KiB of 64\.0 MiB \(0%\)\n/);
  t.regex(run.err, /download stopped; nothing was saved at .*model\.safetensors/);
  t.deepEqual(readdirSync(t.context.dir), []);
});

test("job download keeps nothing when the checksum or the offsets do not add up", async (t) => {
  const bytes = safetensors();
  const dir = path.join(t.context.dir, "out");
  mkdirSync(dir);
  const out = path.join(dir, "model.safetensors");
  for (const [opts, message] of [
    [{ sha256: "00".repeat(32) }, /SHA-256 mismatch: the file hashes to [0-9a-f]{64}, the hub says 0000/],
    [{ skip: 7 }, /the hub sent bytes at offset 14 after 7 bytes/],
  ] as const) {
    const env = await fakeHub(t, { jobs: { downloadWeights: weightsStream(bytes, opts) } });
    const run = await runCliCaptured(["job", "download", JOB_ID, "--out", out], env);
    t.is(run.code, 1);
    t.regex(run.err, message);
    t.deepEqual(readdirSync(dir), [], "neither the file nor its temporary copy is left");
  }
  const noWeights = await fakeHub(t, {
    jobs: {
      // Fails before its first message, as the hub does when a round has no weights yet.
      async *downloadWeights() {
        throw new ConnectError("no aggregated weights of job yet", Code.NotFound);
      },
    },
  });
  const notFound = await runCliCaptured(["job", "download", JOB_ID, "--out", out], noWeights);
  t.is(notFound.code, 1);
  t.regex(notFound.err, /no aggregated weights of job yet \[NotFound\]/);
  t.deepEqual(readdirSync(dir), []);
  t.is((await runCliCaptured(["job", "download", JOB_ID, "--out", dir], await fakeHub(t, { jobs: {} }))).code, 2);
});
