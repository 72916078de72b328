import { create } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { TaskSpecSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { appendAudit } from "../audit/chain.js";
import { assertAcceptingWork } from "../admin/deployment-mode.js";
import { actorOf, type Principal } from "../auth/principal.js";
import { lockProject, modifiableProject } from "../projects/access.js";
import { FailedPreconditionError, InvalidInputError } from "../rpc/domain-errors.js";
import { createTasks } from "../tasks/create-task.js";
import { Trust } from "../trusts/entities.js";
import { CohortAnswer, CohortQuery } from "./entities.js";
import { precheckCohortSql } from "./precheck.js";

/** How long a trust has to answer a cohort query, across its attempts. */
export const COHORT_TASK_TIMEOUT_MS = 10 * 60_000;

export interface CohortSubmission {
  projectId: string;
  name: string;
  sql: string;
}

/**
 * Stores a cohort query and sends one cohort_query task to every enabled trust, all in one transaction:
 * either every trust is asked, or none is. Only an UNSTAGED project can be queried (a staged project's
 * query is what the trusts are deciding on).
 */
export async function submitCohortQuery(em: EntityManager, caller: Principal, input: CohortSubmission): Promise<CohortQuery> {
  const name = input.name.trim() || "cohort query";
  if (name.length > 120) throw new InvalidInputError("name", "must be at most 120 characters");
  const sql = await precheckCohortSql(input.sql);
  return await em.transactional(async (tx) => {
    await modifiableProject(tx, caller, input.projectId);
    await assertAcceptingWork(tx);
    const project = await lockProject(tx, input.projectId);
    if (project.status !== "unstaged") {
      throw new FailedPreconditionError(`the project is ${project.status}: unstage it before querying again (its staged query is what the trusts are deciding on)`);
    }
    const trusts = await tx.find(Trust, { disabledAt: null }, { orderBy: { code: "asc" } });
    if (trusts.length === 0) throw new FailedPreconditionError("no trusts are registered and enabled; register a trust first");
    const actor = actorOf(caller);
    const query = tx.create(CohortQuery, { projectId: project.id, name, sql, createdBy: actor });
    tx.persist(query);
    await tx.flush();
    const spec = create(TaskSpecSchema, { kind: { case: "cohortQuery", value: { projectId: project.id, queryId: query.id, sql } } });
    const tasks = await createTasks(tx, trusts.map((trust) => ({ trustId: trust.id, projectId: project.id, timeoutMs: COHORT_TASK_TIMEOUT_MS, spec })), { actor });
    for (const task of tasks) {
      tx.persist(tx.create(CohortAnswer, { queryId: query.id, trustId: task.trustId, taskId: task.id, state: "pending", recordCount: 0, columns: null, threshold: 0, error: null, answeredAt: null }));
    }
    project.latestQueryId = query.id;
    await tx.flush();
    await appendAudit(tx, {
      actor,
      action: "cohort.query_submitted",
      target: `project:${project.id}`,
      after: { queryId: query.id, name, trusts: trusts.map((t) => t.code), sqlLength: sql.length },
    });
    return query;
  });
}
