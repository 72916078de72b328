import { toJson } from "@bufbuild/protobuf";
import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { TaskErrorCodeSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import { TaskKindSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { TaskSchema, TaskService, TaskState, TaskStateSchema, type Task } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { stringOption, UsageError, type CliArgs, type CliCommand, type CliContext } from "../command.js";
import { table, when, valueLabel } from "../format.js";
import { createOnce } from "../training/retry-once.js";

const stateLabel = (s: TaskState) => valueLabel(TaskStateSchema, s, "TASK_STATE_");
const kindLabel = (t: Task) => valueLabel(TaskKindSchema, t.kind, "TASK_KIND_");
const taskJson = (t: Task | undefined) => (t ? toJson(TaskSchema, t) : null);
const FINAL = new Set([TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.EXPIRED]);

/** "250ms", "5s", "2m", "1h", or plain milliseconds. */
export function parseDurationMs(option: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) throw new UsageError(`--${option}: expected a duration such as 500ms, 5s, 2m or 1h, got "${raw}"`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] ?? "ms"]!;
  return Math.round(Number(m[1]) * unit);
}

function oneTaskId(positionals: string[]): string {
  const [id] = positionals;
  if (!id || positionals.length > 1) throw new UsageError("give exactly one task id");
  return id;
}

/** The outcome in a few words: the echo answer, the error, or the reason it ended. */
function outcomeOf(t: Task): string {
  if (t.output?.kind.case === "echo") return `echo "${t.output.kind.value.message}" from ${t.output.kind.value.trustCode}`;
  if (t.error) return `${valueLabel(TaskErrorCodeSchema, t.error!.code, "TASK_ERROR_CODE_")}: ${t.error.message}`;
  if (FINAL.has(t.state)) return t.endReason;
  if (t.state === TaskState.RUNNING && t.progress > 0) return `${Math.round(t.progress * 100)}% ${t.progressMessage}`.trim();
  return "";
}

export function describeTask(t: Task): string {
  const took = t.endedAt && t.createdAt ? ` in ${timestampMs(t.endedAt) - timestampMs(t.createdAt)} ms` : "";
  return [
    `task ${t.id} (${kindLabel(t)}) for trust ${t.trustCode}`,
    `state: ${stateLabel(t.state)}${took}  attempt ${t.attempt} of ${t.maxAttempts}`,
    `created: ${when(t.createdAt)}  deadline: ${when(t.deadline)}  ended: ${when(t.endedAt)}`,
    ...(outcomeOf(t) ? [`outcome: ${outcomeOf(t)}`] : []),
    ...(t.endReason && !outcomeOf(t).includes(t.endReason) ? [`reason: ${t.endReason}`] : []),
  ].join("\n");
}

/** Polls until the task ends; prints progress changes in human mode. */
async function waitForEnd(ctx: CliContext, task: Task): Promise<Task> {
  const client = ctx.client(TaskService);
  let last = task;
  let shown = "";
  while (!FINAL.has(last.state)) {
    await new Promise((r) => setTimeout(r, 200));
    last = (await client.getTask({ taskId: task.id })).task ?? last;
    const line = `${stateLabel(last.state)} ${outcomeOf(last)}`.trim();
    if (!ctx.json && line !== shown && !FINAL.has(last.state)) ctx.stderr.write(`  ${line}\n`);
    shown = line;
  }
  return last;
}

/** Polls until every task ends; prints how many have in human mode. Returns them in the order given. */
async function waitForAll(ctx: CliContext, tasks: Task[]): Promise<Task[]> {
  const client = ctx.client(TaskService);
  const latest = new Map(tasks.map((t) => [t.id, t]));
  let shown = 0;
  for (;;) {
    const open = [...latest.values()].filter((t) => !FINAL.has(t.state));
    if (open.length === 0) return tasks.map((t) => latest.get(t.id)!);
    const ended = tasks.length - open.length;
    if (!ctx.json && ended !== shown) ctx.stderr.write(`  ${ended} of ${tasks.length} ended\n`);
    shown = ended;
    await new Promise((r) => setTimeout(r, 200));
    for (const t of open) latest.set(t.id, (await client.getTask({ taskId: t.id })).task ?? t);
  }
}

const tasksTable = (tasks: Task[]) =>
  table(["ID", "TRUST", "STATE", "OUTCOME"], tasks.map((t) => [t.id, t.trustCode, stateLabel(t.state), outcomeOf(t).slice(0, 60)]));

function parseStates(args: CliArgs): TaskState[] {
  const raw = stringOption(args, "state");
  if (!raw) return [];
  return raw.split(",").map((name) => {
    const v = TaskStateSchema.values.find((x) => x.name === `TASK_STATE_${name.trim().toUpperCase()}`);
    if (!v || v.number === TaskState.UNSPECIFIED) throw new UsageError(`--state: unknown state "${name}" (pending, offered, running, succeeded, failed, cancelled, expired)`);
    return v.number as TaskState;
  });
}

export const taskCommands: CliCommand[] = [
  {
    path: ["task", "echo"],
    summary:
      "Send a diagnostic echo task to a trust, or to each of several trusts at once (all or none); " +
      "with --wait, wait for the results (exit 1 unless every task succeeded).",
    usage: "--trust <code|id> [--trust ...] [--message <text>] [--delay 2s] [--fail] [--timeout 5m] [--attempts 3] [--wait]",
    options: {
      trust: { type: "string", multiple: true },
      message: { type: "string" },
      delay: { type: "string" },
      fail: { type: "boolean", default: false },
      timeout: { type: "string" },
      attempts: { type: "string" },
      wait: { type: "boolean", default: false },
    },
    async run(ctx, args) {
      const trusts = (args.values.trust as string[] | undefined) ?? [];
      if (trusts.length === 0) throw new UsageError("--trust is required");
      const attempts = stringOption(args, "attempts");
      if (attempts && !/^\d+$/.test(attempts)) throw new UsageError("--attempts: expected a whole number");
      const options = {
        message: stringOption(args, "message", "ping"),
        delay: args.values.delay ? durationFromMs(parseDurationMs("delay", stringOption(args, "delay"))) : undefined,
        fail: Boolean(args.values.fail),
        timeout: args.values.timeout ? durationFromMs(parseDurationMs("timeout", stringOption(args, "timeout"))) : undefined,
        maxAttempts: attempts ? Number(attempts) : 0,
      };
      if (trusts.length > 1) {
        const client = ctx.client(TaskService);
        const { tasks } = await createOnce((idempotencyKey) => client.createEchoTasks({ trusts, ...options, idempotencyKey }), (e) => ctx.stderr.write(`the hub did not answer (${e.rawMessage}); retrying once with the same idempotency key\n`));
        if (!args.values.wait) {
          ctx.print(`created ${tasks.length} tasks\n${tasksTable(tasks)}`, { tasks: tasks.map(taskJson) });
          return;
        }
        if (!ctx.json) ctx.stderr.write(`created ${tasks.length} tasks; waiting for their results\n`);
        const done = await waitForAll(ctx, tasks);
        const succeeded = done.filter((t) => t.state === TaskState.SUCCEEDED).length;
        ctx.print(`${succeeded} of ${done.length} tasks succeeded\n${tasksTable(done)}`, { tasks: done.map(taskJson) });
        return succeeded === done.length ? 0 : 1;
      }
      const client = ctx.client(TaskService);
      const { task } = await createOnce((idempotencyKey) => client.createEchoTask({ trust: trusts[0]!, ...options, idempotencyKey }), (e) => ctx.stderr.write(`the hub did not answer (${e.rawMessage}); retrying once with the same idempotency key\n`));
      if (!task) return 1;
      if (!args.values.wait) {
        ctx.print(`created task ${task.id} for trust ${task.trustCode} (${stateLabel(task.state)})`, { task: taskJson(task) });
        return;
      }
      if (!ctx.json) ctx.stderr.write(`created task ${task.id} for trust ${task.trustCode}; waiting for its result\n`);
      const done = await waitForEnd(ctx, task);
      ctx.print(describeTask(done), { task: taskJson(done) });
      return done.state === TaskState.SUCCEEDED ? 0 : 1;
    },
  },
  {
    path: ["task", "list"],
    summary: "List tasks, newest first, with their state and outcome; one page at a time (the next page's token is printed), or --all.",
    usage: "[--trust <code|id>] [--state running,pending,...] [--page-size 50] [--page-token <token> | --all]",
    options: { trust: { type: "string" }, state: { type: "string" }, "page-size": { type: "string" }, limit: { type: "string" }, "page-token": { type: "string" }, all: { type: "boolean" } },
    async run(ctx, args) {
      // --limit is the older name of --page-size.
      const pageSize = stringOption(args, "page-size") || stringOption(args, "limit", "50");
      if (!/^\d+$/.test(pageSize) || Number(pageSize) < 1 || Number(pageSize) > 500) throw new UsageError("--page-size: expected 1 to 500");
      const all = Boolean(args.values.all);
      let pageToken = stringOption(args, "page-token");
      if (all && pageToken) throw new UsageError("--all starts from the first page; leave out --page-token");
      const client = ctx.client(TaskService);
      const tasks: Task[] = [];
      do {
        const res = await client.listTasks({ trust: stringOption(args, "trust"), states: parseStates(args), page: { pageSize: Number(pageSize), pageToken } });
        tasks.push(...res.tasks);
        pageToken = res.page?.nextPageToken ?? "";
      } while (all && pageToken);
      const listing =
        tasks.length === 0
          ? "no tasks"
          : table(
              ["ID", "TRUST", "KIND", "STATE", "ATTEMPT", "CREATED", "OUTCOME"],
              tasks.map((t) => [t.id, t.trustCode, kindLabel(t), stateLabel(t.state), `${t.attempt}/${t.maxAttempts}`, when(t.createdAt), outcomeOf(t).slice(0, 60)]),
            );
      ctx.print(pageToken ? `${listing}\nmore: the same command with --page-token ${pageToken}, or --all` : listing, { tasks: tasks.map(taskJson), nextPageToken: pageToken });
    },
  },
  {
    path: ["task", "get"],
    summary: "Show one task: state, attempts, deadline and outcome.",
    usage: "<task-id>",
    positionals: true,
    async run(ctx, args) {
      const { task } = await ctx.client(TaskService).getTask({ taskId: oneTaskId(args.positionals) });
      ctx.print(task ? describeTask(task) : "-", { task: taskJson(task) });
    },
  },
  {
    path: ["task", "cancel"],
    summary: "Cancel a task that has not ended; the trust's gateway is told to stop it.",
    usage: "<task-id> [--reason <text>]",
    positionals: true,
    options: { reason: { type: "string" } },
    async run(ctx, args) {
      const { task } = await ctx.client(TaskService).cancelTask({ taskId: oneTaskId(args.positionals), reason: stringOption(args, "reason") });
      ctx.print(task ? describeTask(task) : "-", { task: taskJson(task) });
    },
  },
];
