import { create } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { TaskSpecSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { appendAudit } from "../audit/chain.js";
import { actorOf, type Principal } from "../auth/principal.js";
import { CohortAnswer, CohortQuery } from "../cohorts/entities.js";
import { hasRole, mayDecideForTrust } from "../identity/role-checks.js";
import { requestImagingDeletes } from "../imaging/requests.js";
import { FailedPreconditionError, InvalidInputError, PermissionError } from "../domain/errors.js";
import { createTask } from "../tasks/create-task.js";
import type { Trust } from "../trusts/entities.js";
import { findTrust } from "../trusts/registry.js";
import { lockProject, modifiableProject, visibleProject } from "./access.js";
import { ProjectTrust, type DecisionStateName, type Project } from "./entities.js";

/** How long a trust has to freeze an approved cohort. */
export const FREEZE_TASK_TIMEOUT_MS = 30 * 60_000;

/**
 * UNSTAGED → STAGED at the chosen trusts. Each must have answered the project's latest cohort query
 * with a usable count (OK: not suppressed, empty or failed). The project and its query become read-only.
 */
export async function stageProject(em: EntityManager, caller: Principal, projectId: string, trustRefs: string[]): Promise<Project> {
  if (trustRefs.length === 0) throw new InvalidInputError("trusts", "name at least one trust to stage the project at");
  return await em.transactional(async (tx) => {
    await modifiableProject(tx, caller, projectId);
    const project = await lockProject(tx, projectId);
    if (project.status !== "unstaged") throw new FailedPreconditionError(`the project is already ${project.status}; unstage it first to change its trusts`);
    if (!project.latestQueryId) throw new FailedPreconditionError("the project has no cohort query yet; run one before staging");
    const query = await tx.findOneOrFail(CohortQuery, { id: project.latestQueryId });
    const trusts = [];
    for (const [i, ref] of [...new Set(trustRefs)].entries()) {
      const trust = await findTrust(tx, ref, `trusts[${i}]`);
      const answer = await tx.findOne(CohortAnswer, { queryId: query.id, trustId: trust.id });
      if (answer?.state !== "ok") {
        const why = answer ? `its answer was ${answer.state}` : "it was not asked";
        throw new FailedPreconditionError(`trust "${trust.code}" cannot be staged: ${why} for the latest cohort query; only trusts with a usable (OK) count can be staged`);
      }
      trusts.push(trust);
    }
    for (const trust of trusts) {
      tx.persist(tx.create(ProjectTrust, { projectId, trustId: trust.id, state: "pending", freezeState: "not_requested", decidedAs: null, decidedBy: null, decidedAt: null, reason: null, freezeTaskId: null, frozenPersonCount: null }));
    }
    project.status = "staged";
    await tx.flush();
    await appendAudit(tx, { actor: actorOf(caller), action: "project.staged", target: `project:${projectId}`, before: { status: "unstaged" }, after: { status: "staged", queryId: query.id, trusts: trusts.map((t) => t.code) } });
    return project;
  });
}

/** STAGED → UNSTAGED: pending decisions are dropped. An approved project cannot be unstaged. */
export async function unstageProject(em: EntityManager, caller: Principal, projectId: string): Promise<Project> {
  return await em.transactional(async (tx) => {
    await modifiableProject(tx, caller, projectId);
    const project = await lockProject(tx, projectId);
    if (project.status === "unstaged") return project;
    if (project.status !== "staged") throw new FailedPreconditionError("an approved project cannot be unstaged: trusts have already frozen its cohort");
    const dropped = await tx.find(ProjectTrust, { projectId });
    for (const d of dropped) tx.remove(d);
    project.status = "unstaged";
    await tx.flush();
    await appendAudit(tx, {
      actor: actorOf(caller),
      action: "project.unstaged",
      target: `project:${projectId}`,
      before: { status: "staged", decisions: dropped.map((d) => ({ trustId: d.trustId, state: d.state })) },
      after: { status: "unstaged" },
    });
    return project;
  });
}

/** Only a trust's Trust Admin decides for it; the hub Admin only for a trust without one. */
async function assertMayDecide(tx: EntityManager, caller: Principal, trust: Trust): Promise<void> {
  if (await mayDecideForTrust(tx, caller, trust.id)) return;
  throw new PermissionError(
    hasRole(caller, "admin")
      ? `trust "${trust.code}" has its own Trust Admin; only they can decide for it`
      : `only a Trust Admin of "${trust.code}" (or the hub Admin, for a trust without one) can decide for it`,
  );
}

/**
 * One trust's decision. Only that trust's Trust Admin decides; the hub Admin only for a trust without
 * one. The project is APPROVED as soon as any trust approves; after that, decisions already taken are
 * final and pending trusts may still join. Approving sends the trust a task to freeze the cohort.
 * Idempotent: repeating the same decision changes nothing.
 */
export async function decideProject(
  em: EntityManager,
  caller: Principal,
  projectId: string,
  trustRef: string,
  decision: DecisionStateName,
  reason: string,
): Promise<Project> {
  if (decision !== "approved" && decision !== "declined") {
    throw new InvalidInputError("decision", "must be DECISION_STATE_APPROVED or DECISION_STATE_DECLINED (an approval is withdrawn with WithdrawApproval)");
  }
  if (reason.length > 2000) throw new InvalidInputError("reason", "must be at most 2000 characters");
  return await em.transactional(async (tx) => {
    await visibleProject(tx, caller, projectId);
    const trust = await findTrust(tx, trustRef, "trust");
    await assertMayDecide(tx, caller, trust);
    const project = await lockProject(tx, projectId);
    if (project.status === "unstaged") throw new FailedPreconditionError("the project is not staged; the owner must stage it before trusts can decide");
    const row = await tx.findOne(ProjectTrust, { projectId, trustId: trust.id });
    if (!row) throw new FailedPreconditionError(`the project is not staged at trust "${trust.code}"`);
    if (row.state === decision) return project;
    if (row.state === "withdrawn") throw new FailedPreconditionError(`trust "${trust.code}" withdrew its approval of this project: the decision is final`);
    if (row.state !== "pending" && project.status === "approved") {
      throw new FailedPreconditionError(`trust "${trust.code}" already ${row.state} this project and the project is approved: the decision is final`);
    }
    const before = { status: project.status, decision: row.state };
    row.state = decision;
    row.decidedAs = hasRole(caller, "trust-admin", trust.id) ? "site" : "hub";
    row.decidedBy = actorOf(caller);
    row.decidedAt = new Date();
    row.reason = reason || null;
    if (decision === "approved") {
      project.status = "approved";
      const query = await tx.findOneOrFail(CohortQuery, { id: project.latestQueryId! });
      const task = await createTask(tx, {
        trustId: trust.id,
        projectId,
        actor: actorOf(caller),
        timeoutMs: FREEZE_TASK_TIMEOUT_MS,
        spec: create(TaskSpecSchema, { kind: { case: "freezeCohort", value: { projectId, queryId: query.id, sql: query.sql } } }),
      });
      row.freezeState = "pending";
      row.freezeTaskId = task.id;
    }
    await tx.flush();
    await appendAudit(tx, {
      actor: actorOf(caller),
      action: decision === "approved" ? "project.trust_approved" : "project.trust_declined",
      target: `project:${projectId}`,
      before,
      after: { status: project.status, trust: trust.code, decision, decidedAs: row.decidedAs, reason: reason || undefined },
    });
    return project;
  });
}

/**
 * APPROVED → WITHDRAWN for one trust, for the same deciders as DecideProject: the trust takes no part in
 * new jobs of the project, and is asked (in the same transaction) to delete the research copies of
 * images it imported for it. Final; repeating it changes nothing. Jobs already running are left to end.
 */
export async function withdrawApproval(em: EntityManager, caller: Principal, projectId: string, trustRef: string, reason: string): Promise<Project> {
  const why = reason.trim();
  if (why === "") throw new InvalidInputError("reason", "say why the approval is withdrawn (it is recorded in the audit log)");
  if (why.length > 2000) throw new InvalidInputError("reason", "must be at most 2000 characters");
  return await em.transactional(async (tx) => {
    await visibleProject(tx, caller, projectId);
    const trust = await findTrust(tx, trustRef, "trust");
    await assertMayDecide(tx, caller, trust);
    const project = await lockProject(tx, projectId);
    const row = await tx.findOne(ProjectTrust, { projectId, trustId: trust.id });
    if (!row) throw new FailedPreconditionError(`the project is not staged at trust "${trust.code}"`);
    if (row.state === "withdrawn") return project;
    if (row.state !== "approved") throw new FailedPreconditionError(`trust "${trust.code}" has not approved this project (its decision: ${row.state}); only an approval can be withdrawn`);
    const before = { decision: row.state, decidedBy: row.decidedBy, decidedAt: row.decidedAt?.toISOString(), reason: row.reason ?? undefined, freeze: row.freezeState };
    row.state = "withdrawn";
    row.decidedAs = hasRole(caller, "trust-admin", trust.id) ? "site" : "hub";
    row.decidedBy = actorOf(caller);
    row.decidedAt = new Date();
    row.reason = why;
    await tx.flush();
    await appendAudit(tx, {
      actor: actorOf(caller),
      action: "project.approval_withdrawn",
      target: `project:${projectId}`,
      before,
      after: { trust: trust.code, decision: "withdrawn", decidedAs: row.decidedAs, reason: why },
    });
    await requestImagingDeletes(tx, projectId, [trust.id], "approval withdrawn", actorOf(caller));
    return project;
  });
}
