import { create } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { TaskSpecSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { appendAudit } from "../audit/chain.js";
import { assertAcceptingWork } from "../admin/deployment-mode.js";
import { actorOf, type Principal } from "../auth/principal.js";
import { lockProject, modifiableProject } from "../projects/access.js";
import { FailedPreconditionError, InvalidInputError, LimitReachedError } from "../domain/errors.js";
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

/** The caller already has as many cohort queries in flight as one user may. */
export class TooManyCohortQueriesError extends LimitReachedError {
  override readonly name = "TooManyCohortQueriesError";
  constructor(readonly limit: number) {
    super(
      `you already have ${limit} cohort queries waiting for answers from connected trusts, the most one user may have at once; ` +
        "wait for one of them to be answered (watch it with WatchCohortQuery) and submit again",
    );
  }
}

/**
 * How many of the actor's cohort queries still wait on a trust that is connected. A trust that is
 * offline holds no slot of anyone's (its answer waits for its return or the deadline), so one trust
 * being down does not stop every researcher from querying the others.
 */
async function queriesInFlight(tx: EntityManager, actor: string): Promise<number> {
  const [row] = await tx.execute<{ n: string }[]>(
    `select count(distinct q.id) as n from cohort_query q
     join cohort_answer a on a.query_id = q.id and a.state = 'pending'
     join task t on t.id = a.task_id and t.state in ('pending', 'offered', 'running')
     where q.created_by = ? and exists (select 1 from trust_link l where l.trust_id = a.trust_id)`,
    [actor],
  );
  return Number(row!.n);
}

/**
 * Stores a cohort query and sends one cohort_query task to every enabled trust, all in one transaction:
 * either every trust is asked, or none is. Only an UNSTAGED project can be queried (a staged project's
 * query is what the trusts are deciding on).
 */
export async function submitCohortQuery(em: EntityManager, caller: Principal, input: CohortSubmission, limits: { maxInFlightPerUser: number }): Promise<CohortQuery> {
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
    // One user's submissions are counted one at a time, so parallel submits cannot all slip under the limit.
    await tx.execute("select pg_advisory_xact_lock(hashtext('cohort-submit:' || ?))", [actor]);
    if ((await queriesInFlight(tx, actor)) >= limits.maxInFlightPerUser) throw new TooManyCohortQueriesError(limits.maxInFlightPerUser);
    const query = tx.create(CohortQuery, { projectId: project.id, name, sql, createdBy: actor });
    tx.persist(query);
    await tx.flush();
    const spec = create(TaskSpecSchema, { kind: { case: "cohortQuery", value: { projectId: project.id, queryId: query.id, sql, requestedBy: actor } } });
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
