import type { EntityManager } from "@mikro-orm/postgresql";
import { assertAcceptingWork } from "../admin/deployment-mode.js";
import { appendAudit } from "../audit/chain.js";
import { actorOf, type Principal } from "../auth/principal.js";
import { lockProject, modifiableProject } from "../projects/access.js";
import type { DecisionStateName, FreezeStateName } from "../projects/entities.js";
import { FailedPreconditionError, InvalidInputError } from "../domain/errors.js";
import { cancelTask } from "../tasks/cancel-task.js";
import { findTrust } from "../trusts/registry.js";
import { lockImagingRows, uuidList } from "./rows.js";
import { startImports } from "./requests.js";
import { imagingOf, type TrustImaging } from "./status.js";

export interface ImportRequest {
  projectId: string;
  /** Trust ids or codes; empty: every trust that approved and froze the cohort. */
  trusts: string[];
  convertToNifti: boolean;
}

interface Decision {
  trust_id: string;
  code: string;
  state: DecisionStateName;
  freeze_state: FreezeStateName;
}

/** Why a trust cannot import the project's imaging, or undefined when it can. */
function refusal(d: Decision): string | undefined {
  if (d.state === "withdrawn") return `trust "${d.code}" withdrew its approval of this project`;
  if (d.state !== "approved") return `trust "${d.code}" has not approved this project (its decision: ${d.state})`;
  if (d.freeze_state !== "frozen") {
    return `trust "${d.code}" holds no frozen cohort for this project (freeze: ${d.freeze_state.replace("_", " ")}); its studies can be imported once the cohort is frozen`;
  }
  return undefined;
}

/**
 * ImportImaging: asks trusts to import (again) the frozen cohort's studies, with the NIfTI choice the
 * project keeps for later approvals (asked before any trust approved, it only sets that choice). A trust
 * whose import runs with the same choice keeps it; any other
 * gets a new import (the trust keeps what it imported and retries what failed), and a running import
 * with the other choice is cancelled. The owner or an Admin; refused in deployment mode. Audited.
 */
export async function importImaging(em: EntityManager, caller: Principal, req: ImportRequest): Promise<TrustImaging[]> {
  const refs = [...new Set(req.trusts.map((t) => t.trim()))];
  if (refs.length > 1000) throw new InvalidInputError("trusts", "at most 1000 trusts per request");
  return await em.transactional(async (tx) => {
    await modifiableProject(tx, caller, req.projectId);
    await assertAcceptingWork(tx);
    const project = await lockProject(tx, req.projectId);
    const decisions = await tx.execute<Decision[]>(
      "select pt.trust_id, tr.code, pt.state, pt.freeze_state from project_trust pt join trust tr on tr.id = pt.trust_id where pt.project_id = ? order by tr.code",
      [project.id],
    );
    let targets: Decision[];
    if (refs.length === 0) {
      // None yet: the choice is only remembered, for the imports the approvals will start.
      targets = decisions.filter((d) => refusal(d) === undefined);
    } else {
      targets = [];
      for (const [i, ref] of refs.entries()) {
        const trust = await findTrust(tx, ref, `trusts[${i}]`);
        const d = decisions.find((x) => x.trust_id === trust.id);
        if (!d) throw new FailedPreconditionError(`the project is not staged at trust "${trust.code}"`);
        const why = refusal(d);
        if (why) throw new FailedPreconditionError(why);
        if (!targets.includes(d)) targets.push(d);
      }
    }
    await tx.execute("update project set imaging_convert_to_nifti = ? where id = ?", [req.convertToNifti, project.id]);
    const rows = await lockImagingRows(tx, project.id, targets.map((d) => d.trust_id));
    const open = await tx.execute<{ id: string }[]>("select id from task where id = any(?::uuid[]) and state in ('pending', 'offered', 'running')", [
      uuidList(rows.flatMap((r) => (r.state === "importing" && r.import_task_id ? [r.import_task_id] : []))),
    ]);
    const running = (taskId: string | null) => taskId !== null && open.some((o) => o.id === taskId);
    const kept: Decision[] = [];
    const started: Decision[] = [];
    for (const d of targets) {
      const row = rows.find((r) => r.trust_id === d.trust_id);
      if (row && row.state === "importing" && running(row.import_task_id)) {
        if (row.convert_to_nifti === req.convertToNifti) {
          kept.push(d);
          continue;
        }
        await cancelTask(tx, { taskId: row.import_task_id!, reason: `imaging: replaced by an import ${req.convertToNifti ? "with" : "without"} NIfTI conversion`, actor: actorOf(caller) });
      }
      started.push(d);
    }
    await startImports(tx, project.id, started.map((d) => d.trust_id), req.convertToNifti, actorOf(caller));
    await appendAudit(tx, {
      actor: actorOf(caller),
      action: "imaging.import_requested",
      target: `project:${project.id}`,
      after: { convertToNifti: req.convertToNifti, started: started.map((d) => d.code), kept: kept.map((d) => d.code) },
    });
    return await imagingOf(tx, project.id);
  });
}
