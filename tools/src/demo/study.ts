import { CohortService, TrustAnswerState } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { DecisionState, FreezeState, ProjectService, type Project } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { AuditService } from "@flip/gen/flip/hub/v1/audit_pb.js";
import { describeCohortQuery } from "../cli/commands/cohort.js";
import { describeProject } from "../cli/commands/project.js";
import { authedClient, type DemoAccounts } from "./demo-accounts.js";

/** Type 2 diabetes patients born before 1970, with their sex and decade of birth. */
export const DEMO_COHORT_SQL = `
select p.person_id,
       c.concept_name as sex,
       (p.year_of_birth / 10) * 10 as birth_decade
from omop.person p
join omop.concept c on c.concept_id = p.gender_concept_id
where p.year_of_birth < 1970
  and exists (select 1 from omop.condition_occurrence co
              where co.person_id = p.person_id and co.condition_concept_id = 201826)`;

export interface StudyResult {
  projectId: string;
  queryId: string;
  auditOk: boolean;
}

async function waitFor<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * A cohort study as its people would run it: the researcher creates a project and queries every trust;
 * stages it at the trusts that answered; north's governance officer approves (north freezes the cohort),
 * south's declines; the admin verifies the audit chain.
 */
export async function runDemoStudy(hubUrl: string, accounts: DemoAccounts, out: NodeJS.WritableStream): Promise<StudyResult> {
  const as = <S extends Parameters<typeof authedClient>[1]>(token: string, s: S) => authedClient(hubUrl, s, token);
  const say = (line: string) => out.write(line + "\n");
  const researcher = accounts.researcher.token;

  const { project } = await as(researcher, ProjectService).createProject({
    name: `Diabetes cohort ${new Date().toISOString().slice(0, 19).replace("T", " ")}`,
    description: "Type 2 diabetes patients born before 1970 (demo study)",
  });
  say(`researcher created project "${project!.name}" (${project!.id})`);

  const cohorts = as(researcher, CohortService);
  const { query } = await cohorts.submitCohortQuery({ projectId: project!.id, name: "T2D born before 1970", sql: DEMO_COHORT_SQL });
  say(`cohort query ${query!.id} sent to ${query!.answers.length} trusts; answers as they arrive:`);
  let last = query!;
  for await (const { query: q } of cohorts.watchCohortQuery({ queryId: query!.id }, { timeoutMs: 120_000 })) {
    if (q) last = q;
  }
  say(describeCohortQuery(last).replace(/^/gm, "  "));

  const usable = last.answers.filter((a) => a.state === TrustAnswerState.OK).map((a) => a.trustCode);
  if (usable.length === 0) throw new Error("no trust returned a usable count; the demo cannot stage the project");
  await as(researcher, ProjectService).stageProject({ projectId: project!.id, trusts: usable });
  say(`researcher staged the project at ${usable.join(", ")}`);

  for (const code of usable) {
    const officer = accounts.trustAdmins.get(code);
    if (!officer) continue;
    const approve = code === "north";
    await as(officer.token, ProjectService).decideProject({
      projectId: project!.id,
      trust: code,
      decision: approve ? DecisionState.APPROVED : DecisionState.DECLINED,
      reason: approve ? "approved by the north research ethics committee" : "outside the south trust's approved research areas",
    });
    say(`${officer.email} ${approve ? "approved" : "declined"} the project for ${code}`);
  }

  const projects = as(researcher, ProjectService);
  const final: Project = (
    await waitFor(
      () => projects.getProject({ projectId: project!.id }),
      (r) => r.project!.decisions.every((d) => d.state !== DecisionState.APPROVED || d.freezeState !== FreezeState.PENDING),
      60_000,
    )
  ).project!;
  say(describeProject(final).replace(/^/gm, "  "));

  const verify = await as(accounts.admin.token, AuditService).verifyAuditChain({});
  say(verify.ok ? `audit chain verified: ${verify.entriesChecked} entries` : `AUDIT CHAIN BROKEN at ${verify.firstBrokenSeq}: ${verify.problem}`);
  return { projectId: project!.id, queryId: query!.id, auditOk: verify.ok };
}
