import { MAX_IDEMPOTENCY_KEY_LENGTH } from "../domain/ids.js";
import type { EntityManager } from "@mikro-orm/postgresql";
import { injectTraceContext } from "@flip/shared/telemetry/trace-context.js";
import { appendAudit } from "../audit/chain.js";
import type { Principal } from "../auth/principal.js";
import { actorOf, isAdmin } from "../auth/principal.js";
import { hasRole, trustAdminTrustIds } from "../identity/role-checks.js";
import { principalId } from "../projects/access.js";
import { FailedPreconditionError, InvalidInputError } from "../domain/errors.js";
import { isUuid } from "../domain/ids.js";
import type { Page } from "../domain/paging.js";
import { healthFromJson } from "../trusts/health-json.js";
import { appendJobEvents, jobChanged, wakeScheduler } from "./events.js";
import { modifiableModel, visibleModel } from "./models.js";
import { cancelOpenRoundTasks, createStopTasks } from "./round-tasks.js";
import { findJob, isEnded, lockJob, uuidArray, type JobKindName, type JobRow, type JobStateName } from "./rows.js";
import { NotFoundError } from "../domain/errors.js";

export const DEFAULT_ROUND_TIMEOUT_S = 3600;
export const MAX_ROUNDS = 1000;
export const MAX_GPUS_PER_TRUST = 16;

export interface NewJob {
  modelId: string;
  trusts: string[];
  rounds: number;
  gpusPerTrust: number;
  minUpdates: number;
  roundTimeoutSeconds: number;
  kind: JobKindName;
  idempotencyKey: string;
}

interface TrustRow {
  id: string;
  code: string;
  disabled: boolean;
  health: unknown;
}

/** The host GPU indices a trust advertised in its last heartbeat (or its operator declared). */
export function advertisedGpus(health: unknown): number[] {
  return (healthFromJson(health as never)?.gpus ?? []).map((g) => g.index);
}

/** Resolves trust ids or codes, each once, in the order given. */
async function resolveTrusts(em: EntityManager, refs: string[]): Promise<TrustRow[]> {
  const cleaned = [...new Set(refs.map((r) => r.trim()).filter(Boolean))];
  if (cleaned.length === 0) throw new InvalidInputError("trusts", "name at least one trust (its code or id)");
  if (cleaned.length > 1000) throw new InvalidInputError("trusts", "at most 1000 trusts per job");
  const rows = await em.execute<TrustRow[]>(
    "select id, code, disabled_at is not null as disabled, health from trust where code = any(?::text[]) or id::text = any(?::text[])",
    [`{${cleaned.map((c) => JSON.stringify(c)).join(",")}}`, `{${cleaned.filter(isUuid).join(",")}}`],
  );
  const out: TrustRow[] = [];
  for (const ref of cleaned) {
    const t = rows.find((r) => r.code === ref || r.id === ref);
    if (!t) throw new NotFoundError("trust", ref);
    if (!out.some((o) => o.id === t.id)) out.push(t);
  }
  return out;
}

/**
 * Queues a job. Every trust must have approved the model's project and hold its frozen cohort, and
 * advertise at least the GPUs asked for; the first refusal names the trust and why. A retry with the
 * same idempotency key returns the first call's job.
 */
export async function createJob(em: EntityManager, caller: Principal, input: NewJob): Promise<JobRow> {
  const me = principalId(caller);
  const key = input.idempotencyKey.trim();
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) throw new InvalidInputError("idempotency_key", `must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
  if (key) {
    const [existing] = await em.execute<JobRow[]>("select * from job where created_by = ? and idempotency_key = ?", [me, key]);
    if (existing) return existing;
  }
  const { model } = await modifiableModel(em, caller, input.modelId);
  const kind = input.kind;
  let rounds = input.rounds === 0 ? (kind === "evaluate" ? 1 : 3) : input.rounds;
  if (kind === "evaluate" && rounds !== 1) throw new InvalidInputError("rounds", "an evaluation job has exactly one round; leave rounds unset");
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS) throw new InvalidInputError("rounds", `must be from 1 to ${MAX_ROUNDS}`);
  const gpus = input.gpusPerTrust;
  if (gpus > MAX_GPUS_PER_TRUST) throw new InvalidInputError("gpus_per_trust", `must be at most ${MAX_GPUS_PER_TRUST}`);
  const timeout = input.roundTimeoutSeconds === 0 ? DEFAULT_ROUND_TIMEOUT_S : input.roundTimeoutSeconds;
  if (timeout < 10 || timeout > 7 * 86400) throw new InvalidInputError("round_timeout_seconds", "must be from 10 seconds to 7 days");
  const trusts = await resolveTrusts(em, input.trusts);
  const minUpdates = input.minUpdates === 0 ? trusts.length : input.minUpdates;
  if (minUpdates < 1 || minUpdates > trusts.length) {
    throw new InvalidInputError("min_updates", `must be from 1 to the number of trusts (${trusts.length}); got ${minUpdates}`);
  }
  const decisions = await em.execute<{ trust_id: string; state: string; freeze_state: string }[]>(
    "select trust_id, state, freeze_state from project_trust where project_id = ? and trust_id = any(?::uuid[])",
    [model.project_id, uuidArray(trusts.map((t) => t.id))],
  );
  for (const t of trusts) {
    if (t.disabled) throw new FailedPreconditionError(`trust "${t.code}" is disabled; an Admin must enable it before it can train`);
    const d = decisions.find((x) => x.trust_id === t.id);
    if (!d) throw new FailedPreconditionError(`trust "${t.code}" was never asked to approve this project; stage the project at it first`);
    if (d.state === "withdrawn") throw new FailedPreconditionError(`trust "${t.code}" withdrew its approval of this project; it takes no part in new jobs`);
    if (d.state !== "approved") throw new FailedPreconditionError(`trust "${t.code}" has not approved this project (its decision: ${d.state})`);
    if (d.freeze_state !== "frozen") {
      throw new FailedPreconditionError(`trust "${t.code}" holds no frozen cohort for this project (freeze: ${d.freeze_state.replace("_", " ")}); only trusts with a frozen cohort can train`);
    }
    const have = advertisedGpus(t.health).length;
    if (gpus > have) throw new FailedPreconditionError(`trust "${t.code}" advertises ${have} GPU${have === 1 ? "" : "s"}; this job asks for ${gpus} per trust`);
  }
  const id = crypto.randomUUID();
  try {
    return await em.transactional(async (tx) => {
      const [job] = await tx.execute<JobRow[]>(
        `insert into job (id, model_id, project_id, kind, state, trust_ids, rounds, gpus_per_trust, min_updates, round_timeout_s, created_by, idempotency_key, created_at, trace_context)
         values (?, ?, ?, ?, 'queued', ?::uuid[], ?, ?, ?, ?, ?, ?, ?, ?::jsonb) returning *`,
        // The trace of this call: the job's first round continues it whenever the scheduler starts the job.
        [id, model.id, model.project_id, kind, uuidArray(trusts.map((t) => t.id)), rounds, gpus, minUpdates, timeout, me, key || null, new Date(), JSON.stringify(injectTraceContext())],
      );
      await tx.execute("insert into job_trust (job_id, trust_id) select ?, unnest(?::uuid[])", [id, uuidArray(trusts.map((t) => t.id))]);
      await appendJobEvents(tx, id, [{ kind: "queued", message: `queued for ${trusts.map((t) => t.code).join(", ")}` }]);
      await appendAudit(tx, {
        actor: actorOf(caller),
        action: "job.created",
        target: `job:${id}`,
        after: { modelId: model.id, projectId: model.project_id, kind, trusts: trusts.map((t) => t.code), rounds, gpusPerTrust: gpus, minUpdates, roundTimeoutSeconds: timeout },
      });
      await wakeScheduler(tx);
      return job!;
    });
  } catch (e) {
    if (e instanceof Error && /job_live_per_model/.test(e.message)) {
      const [live] = await em.execute<{ id: string; state: string }[]>("select id, state from job where model_id = ? and state in ('queued', 'running')", [model.id]);
      throw new FailedPreconditionError(`model "${model.name}" already has a ${live?.state ?? "live"} job (${live?.id ?? "?"}); abort it or wait for it to end`);
    }
    if (e instanceof Error && /job_idempotency_unique/.test(e.message)) {
      const [existing] = await em.execute<JobRow[]>("select * from job where created_by = ? and idempotency_key = ?", [me, key]);
      if (existing) return existing;
    }
    throw e;
  }
}

/**
 * Ends a job (in the caller's transaction, under the job's lock): records the state and reason, cancels
 * its open round tasks, tells every trust that started it to stop its container, and audits the end.
 * Ending an ended job changes nothing.
 */
export async function endJob(tx: EntityManager, job: JobRow, state: Extract<JobStateName, "completed" | "failed" | "aborted">, reason: string, actor: string): Promise<boolean> {
  if (isEnded(job.state)) return false;
  const now = new Date();
  await tx.execute("update job set state = ?, ended_at = ?, end_reason = ? where id = ?", [state, now, reason, job.id]);
  if (job.state === "running") {
    await tx.execute("update job_round set state = 'failed' where job_id = ? and state in ('open', 'aggregating')", [job.id]);
    await cancelOpenRoundTasks(tx, job.id, `job ${state}: ${reason}`, actor);
    await createStopTasks(tx, { ...job, state }, reason);
  }
  await appendJobEvents(tx, job.id, [{ kind: "ended", message: `${state}: ${reason}`, details: { state }, dedupeKey: "ended" }]);
  await appendAudit(tx, { actor, action: `job.${state}`, target: `job:${job.id}`, before: { state: job.state, round: job.current_round }, after: { state, reason } });
  await wakeScheduler(tx);
  return true;
}

/** Aborts a job at any point; an ended job is returned as it is. */
export async function abortJob(em: EntityManager, caller: Principal, jobId: string, reason: string): Promise<JobRow> {
  const job = await visibleJob(em, caller, jobId);
  await modifiableModel(em, caller, job.model_id).catch((e: unknown) => {
    // A deleted model's job can still be aborted by whoever could modify it.
    if (!(e instanceof NotFoundError)) throw e;
  });
  const why = reason.trim();
  if (why.length > 500) throw new InvalidInputError("reason", "must be at most 500 characters");
  return await em.transactional(async (tx) => {
    const locked = await lockJob(tx, jobId);
    await endJob(tx, locked, "aborted", `aborted by ${actorOf(caller)}${why ? `: ${why}` : ""}`, actorOf(caller));
    return (await findJob(tx, jobId))!;
  });
}

/** A job whose model the caller may see; anything else reads as not found. */
export async function visibleJob(em: EntityManager, caller: Principal, jobId: string): Promise<JobRow> {
  if (!isUuid(jobId)) throw new InvalidInputError("job_id", "must be a job id (UUID)");
  const job = await findJob(em, jobId);
  if (!job) throw new NotFoundError("job", jobId);
  await visibleModel(em, caller, job.model_id).catch(() => {
    throw new NotFoundError("job", jobId);
  });
  return job;
}

export async function listJobs(em: EntityManager, caller: Principal, modelId: string, page: Page): Promise<JobRow[]> {
  if (modelId) {
    const { model } = await visibleModel(em, caller, modelId);
    return await em.execute<JobRow[]>("select * from job where model_id = ? order by created_at desc, id offset ? limit ?", [model.id, page.offset, page.limit]);
  }
  // Every job of a live project the caller may see (the rules of canSeeProject, in SQL).
  if (isAdmin(caller) || hasRole(caller, "viewer")) {
    return await em.execute<JobRow[]>(
      "select j.* from job j join project p on p.id = j.project_id and p.deleted_at is null order by j.created_at desc, j.id offset ? limit ?",
      [page.offset, page.limit],
    );
  }
  const me = principalId(caller);
  return await em.execute<JobRow[]>(
    `select j.* from job j join project p on p.id = j.project_id and p.deleted_at is null
     where p.owner_id = ?
        or exists (select 1 from project_member m where m.project_id = p.id and m.user_id = ?)
        or exists (select 1 from project_trust pt where pt.project_id = p.id and pt.trust_id = any(?::uuid[]))
     order by j.created_at desc, j.id offset ? limit ?`,
    [me, me, uuidArray(trustAdminTrustIds(caller)), page.offset, page.limit],
  );
}

/**
 * Aborts every live (queued or running) job of a model or of a project, in the caller's transaction, and
 * returns their ids: call jobChanged for each once the change is made, so watchers see the end.
 */
export async function abortLiveJobs(tx: EntityManager, of: { modelId: string } | { projectId: string }, reason: string, actor: string): Promise<string[]> {
  const [column, id] = "modelId" in of ? ["model_id", of.modelId] : ["project_id", of.projectId];
  const live = await tx.execute<{ id: string }[]>(`select id from job where ${column} = ? and state in ('queued', 'running') order by created_at, id`, [id]);
  for (const j of live) await endJob(tx, await lockJob(tx, j.id), "aborted", reason, actor);
  return live.map((j) => j.id);
}

/** Soft-deletes a model and aborts its live job. Idempotent. */
export async function deleteModel(em: EntityManager, caller: Principal, modelId: string): Promise<void> {
  const { model } = await visibleModel(em, caller, modelId);
  if (model.deleted_at) return;
  await modifiableModel(em, caller, modelId);
  await em.transactional(async (tx) => {
    const aborted = await abortLiveJobs(tx, { modelId: model.id }, `model "${model.name}" was deleted by ${actorOf(caller)}`, actorOf(caller));
    await tx.execute("update model set deleted_at = ? where id = ? and deleted_at is null", [new Date(), model.id]);
    await appendAudit(tx, { actor: actorOf(caller), action: "model.deleted", target: `model:${model.id}`, before: { name: model.name } });
    for (const id of aborted) await jobChanged(tx, id);
  });
}
