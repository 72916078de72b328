import { TaskService } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { PeriodicJob } from "@flip/shared/process/periodic-job.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { expireOverdueTasks } from "./expiry.js";
import { registerTaskHandlers } from "./handlers.js";
import { forgetExpiredIdempotencyKeys } from "../rpc/idempotency-keys.js";
import { TaskEvents } from "./task-events.js";

export interface TasksModule extends HubModule {
  /** Subscribe here to learn when tasks end (cohort queries, jobs). */
  readonly events: TaskEvents;
}

/** The task outbox: TaskService, the deadline sweeper (which also forgets expired idempotency keys), and task-ended events for other modules. */
export function tasksModule(deps: HubDeps): TasksModule {
  const events = new TaskEvents(deps.db, deps.log);
  const expiry = new PeriodicJob(
    "task-expiry",
    deps.config.sweepIntervalMs,
    async () => {
      const n = await expireOverdueTasks(deps.db.em());
      if (n > 0) deps.log.info({ expired: n }, "tasks expired at their deadline");
      const forgotten = await forgetExpiredIdempotencyKeys(deps.db.em(), deps.config.idempotencyKeyTtlMs);
      if (forgotten > 0) deps.log.debug({ forgotten }, "expired idempotency keys forgotten");
    },
    deps.log,
  );
  return {
    services: [TaskService],
    routes: (router) => registerTaskHandlers(router, deps),
    events,
    async start() {
      await events.start();
      expiry.start();
    },
    async stop() {
      await expiry.stop();
      await events.stop();
    },
  };
}
