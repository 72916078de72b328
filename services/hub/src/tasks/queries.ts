import type { FilterQuery } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { InvalidInputError, NotFoundError } from "../domain/errors.js";
import type { Page } from "../domain/paging.js";
import { Trust } from "../trusts/entities.js";
import { Task, TaskAttempt, type TaskStateName } from "./entities.js";
import { isUuid } from "../domain/ids.js";

/** A task with the trust code it belongs to, as views show it. */
export interface TaskView {
  task: Task;
  trustCode: string;
}

async function withTrustCodes(em: EntityManager, tasks: Task[]): Promise<TaskView[]> {
  const ids = [...new Set(tasks.map((t) => t.trustId))];
  const trusts = ids.length ? await em.find(Trust, { id: { $in: ids } }, { fields: ["id", "code"] }) : [];
  const codes = new Map(trusts.map((t) => [t.id, t.code]));
  return tasks.map((task) => ({ task, trustCode: codes.get(task.trustId) ?? "" }));
}

export async function getTask(em: EntityManager, taskId: string): Promise<TaskView> {
  if (!isUuid(taskId)) throw new InvalidInputError("task_id", "must be a task id (UUID)");
  const task = await em.findOne(Task, { id: taskId }, { refresh: true });
  if (!task) throw new NotFoundError("task", taskId);
  const [view] = await withTrustCodes(em, [task]);
  return view!;
}

export interface TaskFilter {
  /** Only these trusts; undefined for all. */
  trustIds?: string[];
  states?: TaskStateName[];
}

/** Tasks, newest first. */
export async function listTasks(em: EntityManager, filter: TaskFilter, page: Page): Promise<TaskView[]> {
  const where: FilterQuery<Task> = {};
  if (filter.trustIds) where.trustId = { $in: filter.trustIds };
  if (filter.states?.length) where.state = { $in: filter.states };
  const tasks = await em.find(Task, where, { orderBy: { createdAt: "desc", id: "desc" }, offset: page.offset, limit: page.limit, refresh: true });
  return await withTrustCodes(em, tasks);
}

/** Every attempt of a task, oldest first (where it was offered and how it ended). */
export async function listAttempts(em: EntityManager, taskId: string): Promise<TaskAttempt[]> {
  return await em.find(TaskAttempt, { taskId }, { orderBy: { attempt: "asc" }, refresh: true });
}
