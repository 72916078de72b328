import type { JsonValue } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { isAdmin, type Principal } from "../auth/principal.js";
import type { Page } from "../domain/paging.js";
import { PermissionError } from "../domain/errors.js";
import { hasRole } from "../identity/role-checks.js";
import { loadPeople, type People } from "../identity/people.js";
import type { TaskStateName } from "../tasks/entities.js";
import type { Trust } from "./entities.js";
import { findTrust } from "./registry.js";

/** Audit actions that record a trust's decision on a project (each names the trust's code in `after.trust`). */
const DECISION_ACTIONS = ["project.trust_approved", "project.trust_declined", "project.approval_withdrawn"];

/** One task the hub sent to the trust, with what the ledger shows beside it. Times as the driver returns them (strings). */
export interface ActivityRow {
  id: string;
  kind: string;
  state: TaskStateName;
  created_at: Date | string;
  ended_at: Date | string | null;
  created_by: string;
  project_id: string | null;
  project_name: string | null;
  /** Canonical proto JSON of the TaskSpec, TaskOutput and TaskError. */
  spec: JsonValue;
  output: JsonValue | null;
  error: JsonValue | null;
  end_reason: string | null;
  /** For training tasks: who started the job (a user id or "bootstrap-admin"), and its model. */
  job_created_by: string | null;
  model_id: string | null;
  model_name: string | null;
  /** The trust's decision in force when the task was created: its audit entry's action, actor, time and `after`. */
  decision_action: string | null;
  decision_actor: string | null;
  decision_at: Date | string | null;
  decision_after: string | null;
}

export interface TrustActivityPage {
  trust: Trust;
  rows: ActivityRow[];
  /** The people behind task creators, job creators and deciders. */
  people: People;
}

/**
 * A page of the trust's ledger, newest first: the tasks the hub sent it with their project, model and
 * the decision in force when each was sent. Its Trust Admins and Admin may read it. Three queries per
 * page whatever its size: the trust, the page, its people.
 */
export async function listTrustActivity(em: EntityManager, caller: Principal, trustRef: string, kinds: readonly string[], page: Page): Promise<TrustActivityPage> {
  const trust = await findTrust(em, trustRef);
  if (!isAdmin(caller) && !hasRole(caller, "trust-admin", trust.id)) {
    throw new PermissionError(`only a Trust Admin of "${trust.code}" or an Admin can see its ledger`);
  }
  // Kind names come from the TaskKind enum (lower-case letters and underscores): safe in an array literal.
  const kindFilter = kinds.length ? "and t.kind = any(?::text[])" : "";
  const rows = await em.execute<ActivityRow[]>(
    `with page as (
       select * from task t where t.trust_id = ? ${kindFilter}
       order by t.created_at desc, t.id desc limit ? offset ?
     )
     select t.id, t.kind, t.state, t.created_at, t.ended_at, t.created_by, t.project_id, t.spec, t.output, t.error, t.end_reason,
            p.name as project_name, j.created_by as job_created_by, m.id as model_id, m.name as model_name,
            d.action as decision_action, d.actor as decision_actor, d.at as decision_at, d.after_json as decision_after
     from page t
     left join project p on p.id::text = t.project_id
     left join job j on t.kind = 'training' and j.id::text = t.spec #>> '{training,jobId}'
     left join model m on m.id = j.model_id
     -- The latest decision of this trust recorded before the task was created. A freeze task is created
     -- by the approval it follows, in the same transaction, a moment before that approval's entry.
     left join lateral (
       select a.action, a.actor, a.at, a.after_json from audit_entry a
       where a.target = 'project:' || t.project_id and a.action = any(?::text[]) and (a.after_json::jsonb ->> 'trust') = ?
         and (a.at <= t.created_at or (t.kind = 'freeze_cohort' and a.action = 'project.trust_approved'))
       order by a.id desc limit 1
     ) d on t.project_id is not null
     order by t.created_at desc, t.id desc`,
    [trust.id, ...(kinds.length ? [`{${kinds.join(",")}}`] : []), page.limit, page.offset, `{${DECISION_ACTIONS.join(",")}}`, trust.code],
  );
  const people = await loadPeople(em, rows.flatMap((r) => [r.created_by, r.job_created_by, r.decision_actor]));
  return { trust, rows, people };
}
