import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAudit } from "../audit/chain.js";
import { FailedPreconditionError } from "../domain/errors.js";

export interface DeploymentMode {
  enabled: boolean;
  changedAt: Date;
  changedBy: string;
  runningTasks: number;
  runningJobs: number;
  /** On, and nothing in flight: the hub can be redeployed without cutting work. */
  safeToRedeploy: boolean;
}

export async function getDeploymentMode(em: EntityManager): Promise<DeploymentMode> {
  const [row] = await em.execute<{ enabled: boolean; changed_at: Date; changed_by: string }[]>("select enabled, changed_at, changed_by from deployment_mode where id = 1");
  const [tasks] = await em.execute<{ n: string }[]>("select count(*) as n from task where state in ('offered', 'running')");
  const runningTasks = Number(tasks?.n ?? 0);
  const [jobs] = await em.execute<{ n: string }[]>("select count(*) as n from job where state = 'running'");
  const runningJobs = Number(jobs?.n ?? 0);
  const enabled = row?.enabled ?? false;
  return {
    enabled,
    changedAt: row ? new Date(row.changed_at) : new Date(0),
    changedBy: row?.changed_by ?? "system",
    runningTasks,
    runningJobs,
    safeToRedeploy: enabled && runningTasks === 0 && runningJobs === 0,
  };
}

/** Turns deployment mode on or off; idempotent (no audit entry when nothing changes). */
export async function setDeploymentMode(em: EntityManager, actor: string, enabled: boolean): Promise<DeploymentMode> {
  await em.transactional(async (tx) => {
    const [row] = await tx.execute<{ enabled: boolean }[]>("select enabled from deployment_mode where id = 1 for update");
    if (row?.enabled === enabled) return;
    await tx.execute("update deployment_mode set enabled = ?, changed_at = now(), changed_by = ? where id = 1", [enabled, actor]);
    await appendAudit(tx, { actor, action: enabled ? "deployment_mode.enabled" : "deployment_mode.disabled", target: "platform", before: { enabled: row?.enabled ?? false }, after: { enabled } });
  });
  return await getDeploymentMode(em);
}

/** Refuses new work while deployment mode is on. Call inside the transaction that would start the work. */
export async function assertAcceptingWork(em: EntityManager): Promise<void> {
  const [row] = await em.execute<{ enabled: boolean }[]>("select enabled from deployment_mode where id = 1");
  if (row?.enabled) throw new FailedPreconditionError("the platform is in deployment mode: new work is paused until an Admin turns it off");
}
