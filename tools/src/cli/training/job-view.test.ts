import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import test from "ava";
import {
  JobEventKind,
  JobEventSchema,
  JobSchema,
  JobState,
  MetricPointSchema,
  ParticipantState,
  WatchJobResponseSchema,
  type JobEvent,
  type WatchJobResponse,
} from "@flip/gen/flip/hub/v1/training_pb.js";
import { bar, metricValue, secondsLabel } from "./describe.js";
import { eventLines, JobView, printable } from "./job-view.js";

const NORTH = "00000000-0000-4000-8000-00000000000a";
const SOUTH = "00000000-0000-4000-8000-00000000000b";
const at = timestampFromDate(new Date("2026-11-22T10:00:03Z"));

const jobItem = (j: MessageInitShape<typeof JobSchema>): WatchJobResponse =>
  create(WatchJobResponseSchema, { item: { case: "job", value: create(JobSchema, { id: "job-1", modelName: "numpy", rounds: 3, minUpdates: 2, roundTimeoutSeconds: 600, ...j }) } });
const event = (e: MessageInitShape<typeof JobEventSchema>): JobEvent => create(JobEventSchema, { at, ...e });
const eventItem = (e: MessageInitShape<typeof JobEventSchema>): WatchJobResponse => create(WatchJobResponseSchema, { item: { case: "event", value: event(e) } });
const metricItem = (m: MessageInitShape<typeof MetricPointSchema>): WatchJobResponse => create(WatchJobResponseSchema, { item: { case: "metric", value: create(MetricPointSchema, m) } });

type Part = { state: ParticipantState; progress?: number; lastMissReason?: string };
const running = (north: Part, south: Part = { state: ParticipantState.WAITING }) =>
  jobItem({
    state: JobState.RUNNING,
    currentRound: 2,
    participants: [
      { trustId: NORTH, trustCode: "north", gpuIndices: [0], progress: 0, ...north },
      { trustId: SOUTH, trustCode: "south", progress: 0, ...south },
    ],
  });

test("small helpers draw bars, durations and metric values compactly", (t) => {
  t.is(bar(0.5, 10), "[#####-----]");
  t.is(bar(-1, 4), "[----]");
  t.is(bar(2, 4), "[####]");
  t.deepEqual([90, 600, 3600, 5400].map(secondsLabel), ["90s", "10m", "1h", "90m"]);
  t.deepEqual([0.412345, 3, 1234567.8, 0.00001234].map(metricValue), ["0.4123", "3", "1.23e+6", "1.23e-5"]);
});

test("event lines carry the time, the trust's code and the hub's message; log lines keep their trust on every line", (t) => {
  t.deepEqual(eventLines(event({ kind: JobEventKind.ROUND_STARTED, round: 2, message: "round 2 of 3 started" })), ["10:00:03  round 2 of 3 started"]);
  const log = event({ kind: JobEventKind.LOG, trustId: NORTH, message: "epoch 1\nepoch 2" });
  t.deepEqual(eventLines(log, new Map([[NORTH, "north"]])), ["10:00:03  north log: epoch 1", "10:00:03  north log: epoch 2"]);
  t.deepEqual(eventLines(event({ kind: JobEventKind.ENDED, message: "failed: round 2 got 1 of 2 updates" })), ["10:00:03  job failed: round 2 got 1 of 2 updates"]);
  t.deepEqual(eventLines(event({ kind: JobEventKind.WORKLOAD, details: { trust: "south", kind: "checkpoint" }, message: "saved" })), ["10:00:03  south: checkpoint: saved"]);
});

test("text from a workload cannot send escape sequences to the terminal", (t) => {
  t.is(printable("loss \u001b[2J\u001b]0;pwned\u0007 0.4"), "loss \uFFFD[2J\uFFFD]0;pwned\uFFFD 0.4");
  const view = new JobView("job-1");
  const lines = view.apply(eventItem({ kind: JobEventKind.LOG, details: { trust: "north" }, message: "\u001b[31mred" }));
  t.deepEqual(lines, ["10:00:03  north log: \uFFFD[31mred"]);
});

test("plain output tells the queue position once per change, then each waiting or training trust as its progress moves by a tenth", (t) => {
  const view = new JobView("job-1");
  view.apply(jobItem({ state: JobState.QUEUED, queuePosition: 2 }));
  t.deepEqual(view.changes(), ["queued: position 2"]);
  view.apply(jobItem({ state: JobState.QUEUED, queuePosition: 2 }));
  t.deepEqual(view.changes(), []);
  view.apply(running({ state: ParticipantState.TRAINING, progress: 0.25 }));
  t.deepEqual(view.changes(), ["round 2  north  [#####---------------]  25%  training", "round 2  south  [--------------------]   0%  waiting"]);
  view.apply(running({ state: ParticipantState.TRAINING, progress: 0.29 }));
  t.deepEqual(view.changes(), []);
  view.apply(running({ state: ParticipantState.TRAINING, progress: 0.5 }));
  t.deepEqual(view.changes(), ["round 2  north  [##########----------]  50%  training"]);
  // An update or a miss is told by the hub's event line, not again here.
  view.apply(running({ state: ParticipantState.MISSED, lastMissReason: "deadline passed" }));
  t.deepEqual(view.changes(), []);
});

test("plain output groups metrics per round and trust with each label's newest value", (t) => {
  const view = new JobView("job-1");
  view.apply(running({ state: ParticipantState.TRAINING }));
  view.apply(metricItem({ trustId: NORTH, round: 2, label: "loss", value: 0.5, xLabel: "step", xValue: 10 }));
  view.apply(metricItem({ trustId: NORTH, round: 2, label: "loss", value: 0.41, xLabel: "step", xValue: 20 }));
  view.apply(metricItem({ trustId: NORTH, round: 2, label: "accuracy", value: 0.8 }));
  view.apply(metricItem({ trustId: SOUTH, round: 2, label: "loss", value: 0.39, attributes: { trust: "south" } }));
  t.true(view.hasPendingMetrics);
  t.deepEqual(view.takeMetricLines(), ["round 2  north  metrics: loss 0.41, accuracy 0.8", "round 2  south  metrics: loss 0.39"]);
  t.false(view.hasPendingMetrics);
  t.deepEqual(view.takeMetricLines(), []);
});

test("the terminal block shows the headline, a bar per trust with its state, and the latest metrics per trust", (t) => {
  const view = new JobView("job-1");
  t.deepEqual(view.frame(), ["job job-1: waiting for the hub…"]);
  view.apply(running({ state: ParticipantState.TRAINING, progress: 0.5 }, { state: ParticipantState.MISSED, lastMissReason: "trust offline" }));
  view.apply(metricItem({ trustId: NORTH, round: 2, label: "loss", value: 0.41 }));
  view.apply(metricItem({ trustId: NORTH, round: 1, label: "accuracy", value: 0.7 }));
  t.deepEqual(view.frame(), [
    "job job-1 (train numpy): running, round 2 of 3  (2 of 2 updates needed, 10m per round)",
    "  north  [##########----------]  50%  training  gpu 0",
    "  south  [--------------------]   0%  missed: trust offline",
    "latest metrics  loss  accuracy  round",
    "  north         0.41  0.7       2",
  ]);
});

test("the summary gives the final state, each trust's updates and misses, and how to get the weights", (t) => {
  const view = new JobView("job-1");
  view.apply(
    jobItem({
      state: JobState.COMPLETED,
      currentRound: 3,
      endReason: "3 rounds trained",
      globalWeightsArtifactId: "art-1",
      participants: [
        { trustId: NORTH, trustCode: "north", state: ParticipantState.DONE, updates: 3 },
        { trustId: SOUTH, trustCode: "south", state: ParticipantState.DONE, updates: 2, missed: 1, lastMissReason: "deadline passed" },
      ],
    }),
  );
  t.deepEqual(view.summary(), [
    "job job-1 (train numpy): completed: 3 rounds trained",
    "  north: 3 updates, 0 missed",
    "  south: 2 updates, 1 missed (last: deadline passed)",
    "weights: flip job download job-1 --out model.safetensors",
  ]);
});
