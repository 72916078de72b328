import { create } from "@bufbuild/protobuf";
import { durationMs, type Duration } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  CreateEchoTaskRequestSchema,
  CreateEchoTaskResponseSchema,
  CreateEchoTasksRequestSchema,
  CreateEchoTasksResponseSchema,
  TaskService,
} from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { EchoSpecSchema, TaskSpecSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { assertAcceptingWork } from "../admin/deployment-mode.js";
import { isAdmin, type Principal } from "../auth/principal.js";
import { trustAdminTrustIds } from "../identity/role-checks.js";
import { InvalidInputError, NotFoundError, PermissionError } from "../domain/errors.js";
import { actorFor, answer, callerOf, type HubDeps } from "../rpc/hub-context.js";
import { nextPageToken, readPage } from "../domain/paging.js";
import { findTrust, findTrusts } from "../trusts/registry.js";
import { cancelTask } from "./cancel-task.js";
import { createTask, createTasks, type TaskRequest } from "./create-task.js";
import type { TaskStateName } from "./entities.js";
import { createCallOf, createOnce } from "../rpc/idempotency-keys.js";
import { getTask, listTasks } from "./queries.js";
import { taskStateFromProto, taskToProto } from "./to-proto.js";

const MAX_ECHO_MESSAGE = 4096;
/** Most trusts one CreateEchoTasks call may name: bounds the request, the response and its audit entry. */
const MAX_ECHO_BATCH = 10_000;

/** What CreateEchoTask and CreateEchoTasks share. */
interface EchoOptions {
  message: string;
  delay?: Duration;
  fail: boolean;
  timeout?: Duration;
  maxAttempts: number;
}

/** The echo task an RPC asks for, less its trust; the domain checks the timeout and attempts. */
function echoTask(req: EchoOptions): Omit<TaskRequest, "trustId"> {
  if (req.message.length > MAX_ECHO_MESSAGE) throw new InvalidInputError("message", `must be at most ${MAX_ECHO_MESSAGE} characters`);
  const delayMs = req.delay ? durationMs(req.delay) : 0;
  if (delayMs < 0 || delayMs > 3_600_000) throw new InvalidInputError("delay", "must be from 0 to 1 hour");
  return {
    spec: create(TaskSpecSchema, { kind: { case: "echo", value: create(EchoSpecSchema, { message: req.message, delay: req.delay, fail: req.fail }) } }),
    timeoutMs: req.timeout ? durationMs(req.timeout) : undefined,
    maxAttempts: req.maxAttempts === 0 ? undefined : req.maxAttempts,
  };
}

/** Trusts whose tasks the caller may see: undefined means every trust (Admin); a Trust Admin sees their trusts'. */
function visibleTrusts(p: Principal): Set<string> | undefined {
  return isAdmin(p) ? undefined : new Set(trustAdminTrustIds(p));
}

export function registerTaskHandlers(router: ConnectRouter, { db, config, log }: HubDeps): void {
  router.service(TaskService, {
    createEchoTask: (req, ctx) =>
      answer(log, ctx, async () => {
        const echo = echoTask(req);
        return await createOnce(db.em(), createCallOf(ctx, CreateEchoTaskRequestSchema, req, CreateEchoTaskResponseSchema, config.idempotencyKeyTtlMs), async (em) => {
          const trust = await findTrust(em, req.trust);
          await assertAcceptingWork(em);
          const task = await createTask(em, { ...echo, trustId: trust.id, actor: actorFor(ctx) });
          log.info({ taskId: task.id, trustId: trust.id, kind: task.kind }, "task created");
          return { task: taskToProto({ task, trustCode: trust.code }) };
        });
      }),
    createEchoTasks: (req, ctx) =>
      answer(log, ctx, async () => {
        if (req.trusts.length === 0) throw new InvalidInputError("trusts", "give at least one trust id or code");
        if (req.trusts.length > MAX_ECHO_BATCH) throw new InvalidInputError("trusts", `at most ${MAX_ECHO_BATCH} per call, got ${req.trusts.length}`);
        const echo = echoTask(req);
        return await createOnce(db.em(), createCallOf(ctx, CreateEchoTasksRequestSchema, req, CreateEchoTasksResponseSchema, config.idempotencyKeyTtlMs), async (em) => {
          const trusts = await findTrusts(em, req.trusts);
          await assertAcceptingWork(em);
          const tasks = await createTasks(em, trusts.map((trust) => ({ ...echo, trustId: trust.id })), { actor: actorFor(ctx) });
          log.info({ tasks: tasks.length, kind: "echo" }, "tasks created");
          return { tasks: tasks.map((task, i) => taskToProto({ task, trustCode: trusts[i]!.code })) };
        });
      }),
    getTask: (req, ctx) =>
      answer(log, ctx, async () => {
        const view = await getTask(db.em(), req.taskId);
        const visible = visibleTrusts(callerOf(ctx));
        // Someone else's task is reported as missing, so ids of other trusts' tasks cannot be probed.
        if (visible && !visible.has(view.task.trustId)) throw new NotFoundError("task", req.taskId);
        return { task: taskToProto(view) };
      }),
    listTasks: (req, ctx) =>
      answer(log, ctx, async () => {
        const page = readPage(req.page);
        const em = db.em();
        const visible = visibleTrusts(callerOf(ctx));
        let trustIds: string[] | undefined;
        if (req.trust !== "") {
          const trust = await findTrust(em, req.trust);
          if (visible && !visible.has(trust.id)) throw new PermissionError(`you may list tasks of your own trusts only, not of "${trust.code}"`);
          trustIds = [trust.id];
        } else if (visible) {
          if (visible.size === 0) throw new PermissionError("listing tasks needs the Admin or Trust Admin role");
          trustIds = [...visible];
        }
        const states = req.states.map((s, i) => {
          const name = taskStateFromProto(s);
          if (!name) throw new InvalidInputError(`states[${i}]`, "must be a task state other than UNSPECIFIED");
          return name;
        });
        const views = await listTasks(em, { trustIds, states: states as TaskStateName[] }, page);
        return { tasks: views.map(taskToProto), page: { nextPageToken: nextPageToken(page, views.length) } };
      }),
    cancelTask: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        const task = await cancelTask(em, { taskId: req.taskId, reason: req.reason, actor: actorFor(ctx) });
        log.info({ taskId: task.id, state: task.state }, "task cancel requested");
        const view = await getTask(db.em(), task.id);
        return { task: taskToProto(view) };
      }),
  });
}
