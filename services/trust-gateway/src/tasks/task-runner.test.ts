import test from "ava";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import { TaskErrorCode, TaskOfferSchema, type TaskResult } from "@flip/gen/flip/link/v1/link_pb.js";
import { TaskKind, TrainingReportSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { echoHandler } from "./handlers/echo.js";
import { MemoryResultStore } from "./result-store.js";
import type { TaskHandlers } from "./task-handler.js";
import type { TaskLogEntry } from "./task-log.js";
import { TaskRunner, type LinkMessage } from "./task-runner.js";

const log = createLogger({ service: "test", level: "silent" });

function runner(handlers: TaskHandlers = { echo: echoHandler }, capacity = new Map([["echo", 2]])) {
  const sent: NonNullable<LinkMessage>[] = [];
  const events: Omit<TaskLogEntry, "at">[] = [];
  let linked = true;
  const results = new MemoryResultStore();
  const r = new TaskRunner({
    handlers,
    capacity,
    trustCode: "gstt",
    results,
    taskLog: { append: (e) => events.push(e) },
    log,
    send: (m) => (linked ? (sent.push(m!), true) : false),
  });
  return { r, sent, events, results, setLinked: (v: boolean) => (linked = v) };
}

const offer = (taskId: string, opts: { delayMs?: number; attempt?: number; deadlineMs?: number; kind?: TaskKind; fail?: boolean } = {}) =>
  create(TaskOfferSchema, {
    taskId,
    attempt: opts.attempt ?? 1,
    kind: opts.kind ?? TaskKind.ECHO,
    spec: opts.kind && opts.kind !== TaskKind.ECHO ? { kind: { case: "training", value: {} } } : { kind: { case: "echo", value: { message: "m", delay: opts.delayMs ? durationFromMs(opts.delayMs) : undefined, fail: opts.fail } } },
    deadline: timestampFromMs(Date.now() + (opts.deadlineMs ?? 60_000)),
  });

const ids = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000003"];
const until = async (cond: () => boolean) => {
  for (let i = 0; i < 1_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};
// The runner sends results as full TaskResult messages (built with create()).
const resultsOf = (sent: NonNullable<LinkMessage>[]) => sent.filter((m) => m.case === "result").map((m) => m.value as TaskResult);

test("an offered task is acknowledged, run, and its result kept until the hub acknowledges it", async (t) => {
  const { r, sent, results } = runner();
  r.offer(offer(ids[0]!, { delayMs: 50 }), ROOT_CONTEXT);
  await until(() => sent.length > 0);
  t.is(sent[0]?.case, "ack");
  await until(() => resultsOf(sent).length === 1);
  t.is(resultsOf(sent)[0]?.outcome?.case, "output");
  t.deepEqual(r.inFlight(), [{ taskId: ids[0], attempt: 1 }], "held until acknowledged");
  r.resultAcknowledged({ taskId: ids[0]!, attempt: 1, recorded: true, $typeName: "flip.link.v1.ResultAck" });
  t.deepEqual(results.all(), []);
  t.deepEqual(r.inFlight(), []);
});

test("a task that ends in the turn it was accepted reports only its result: the result says it ran", async (t) => {
  const { r, sent } = runner();
  r.offer(offer(ids[0]!), ROOT_CONTEXT);
  await until(() => resultsOf(sent).length === 1);
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(sent.map((m) => m.case), ["result"]);
});

test("the same task offered again while it runs is not run twice", async (t) => {
  const { r, sent, events } = runner();
  r.offer(offer(ids[0]!, { delayMs: 100 }), ROOT_CONTEXT);
  r.offer(offer(ids[0]!, { delayMs: 100, attempt: 2 }), ROOT_CONTEXT);
  await until(() => resultsOf(sent).length === 1);
  await new Promise((r) => setTimeout(r, 150));
  t.is(events.filter((e) => e.event === "started").length, 1);
  t.is(resultsOf(sent).length, 1);
  t.is(resultsOf(sent)[0]?.attempt, 2, "reported under the newest attempt");
});

test("a result produced while unlinked is kept and sent again after the next welcome", async (t) => {
  const { r, sent, setLinked } = runner();
  r.offer(offer(ids[0]!), ROOT_CONTEXT);
  setLinked(false);
  await until(() => r.runningCount === 0);
  t.is(resultsOf(sent).length, 0);
  setLinked(true);
  r.resendResults();
  t.is(resultsOf(sent).length, 1);
});

test("a cancelled task and a task past its deadline stop and report nothing (the hub decides both)", async (t) => {
  const { r, sent, events } = runner();
  r.offer(offer(ids[0]!, { delayMs: 5_000 }), ROOT_CONTEXT);
  r.offer(offer(ids[1]!, { delayMs: 5_000, deadlineMs: 50 }), ROOT_CONTEXT);
  r.cancel({ taskId: ids[0]!, reason: "test", $typeName: "flip.link.v1.TaskCancel" });
  await until(() => r.runningCount === 0);
  t.deepEqual(resultsOf(sent), []);
  t.deepEqual(r.inFlight(), []);
  t.true(events.some((e) => e.taskId === ids[0] && e.event === "cancelled"));
  t.true(events.some((e) => e.taskId === ids[1] && e.event === "timed_out"));
});

test("no more tasks of a kind run at once than declared; extra offers wait their turn", async (t) => {
  const { r, sent, events } = runner(undefined, new Map([["echo", 2]]));
  for (const id of ids) r.offer(offer(id, { delayMs: 100 }), ROOT_CONTEXT);
  await until(() => resultsOf(sent).length === 3);
  t.is(resultsOf(sent).length, 3);
  // Replay the task log: how many were running at once, at most?
  let running = 0;
  let most = 0;
  for (const e of events) {
    if (e.event === "started") most = Math.max(most, ++running);
    if (e.event === "succeeded") running--;
  }
  t.is(most, 2);
  t.is(events.filter((e) => e.event === "started").length, 3);
});

test("a kind without a handler is declined as UNSUPPORTED; an unexpected error does not leak its message", async (t) => {
  const { r, sent } = runner({
    echo: () => {
      return Promise.reject(new Error("patient 1234 has no record"));
    },
  });
  r.offer(offer(ids[0]!, { kind: TaskKind.TRAINING }), ROOT_CONTEXT);
  r.offer(offer(ids[1]!), ROOT_CONTEXT);
  await until(() => resultsOf(sent).length === 2);
  const byId = new Map(resultsOf(sent).map((x) => [x.taskId, x.outcome.case === "error" ? x.outcome.value : undefined]));
  t.is(byId.get(ids[0]!)?.code, TaskErrorCode.UNSUPPORTED);
  t.is(byId.get(ids[1]!)?.code, TaskErrorCode.INTERNAL);
  t.notRegex(byId.get(ids[1]!)?.message ?? "", /1234/);
});

test("a training report is sent at once, with the task's latest progress; none after the task ended", async (t) => {
  let finish!: () => void;
  let ctxOf!: Parameters<NonNullable<TaskHandlers["training"]>>[1];
  const handlers: TaskHandlers = {
    training: async (_spec, ctx) => {
      ctxOf = ctx;
      ctx.progress(-1, "round 1: training");
      ctx.report(create(TrainingReportSchema, { metrics: [{ seq: 1n, label: "loss", value: 0.5, round: 1 }] }));
      await new Promise<void>((resolve) => (finish = resolve));
      return { round: 1 };
    },
  };
  const { r, sent } = runner(handlers, new Map([["training", 1]]));
  r.offer(offer(ids[0]!, { kind: TaskKind.TRAINING }), ROOT_CONTEXT);
  await until(() => finish !== undefined);
  const reports = () => sent.filter((m) => m.case === "progress" && m.value.training);
  t.is(reports().length, 1);
  t.like(reports()[0]!.value, { taskId: ids[0], fraction: -1, message: "round 1: training" });
  finish();
  await until(() => resultsOf(sent).length === 1);
  ctxOf.report(create(TrainingReportSchema, {}));
  t.is(reports().length, 1);
});
