import { mkdir, readdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { CohortService, TrustAnswerState } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { DecisionState, FreezeState, ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { JobService, JobState, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { jobStateLabel } from "../cli/training/describe.js";
import { JobView } from "../cli/training/job-view.js";
import { followJob, plainOutput, ttyOutput } from "../cli/training/job-watch.js";
import { downloadWeights } from "../cli/training/weights-download.js";
import { WORKLOAD_IMAGES } from "../images/ensure-images.js";
import { authedClient, type DemoAccounts } from "./demo-accounts.js";
/**
 * The training cohort: type 2 diabetes patients with features a model can learn from (birth year, sex,
 * visits) and a label (hypertension). Rows stay at each trust; only the model's weights leave.
 */
export const TRAINING_COHORT_SQL = `
select p.person_id,
       p.year_of_birth,
       case when p.gender_concept_id = 8507 then 1 else 0 end as male,
       (select count(*) from omop.visit_occurrence v where v.person_id = p.person_id) as visits,
       case when exists (select 1 from omop.condition_occurrence h
                         where h.person_id = p.person_id and h.condition_concept_id = 316866) then 1 else 0 end as hypertension
from omop.person p
where exists (select 1 from omop.condition_occurrence co
              where co.person_id = p.person_id and co.condition_concept_id = 201826)`;

const root = path.resolve(import.meta.dirname, "../../..");

export interface DemoTrainingResult {
  jobId: string;
  state: JobState;
  weightsPath: string | undefined;
}

async function waitFor<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

type As = <S extends Parameters<typeof authedClient>[1]>(token: string, s: S) => ReturnType<typeof authedClient<S>>;

/** A project approved at every trust that answers its cohort query usably, each having frozen its cohort. */
export async function approvedEverywhere(
  as: As,
  accounts: DemoAccounts,
  spec: { name: string; description: string; queryName: string; sql: string },
): Promise<{ projectId: string; name: string; trusts: string[] }> {
  const researcher = accounts.researcher.token;
  const { project } = await as(researcher, ProjectService).createProject({ name: spec.name, description: spec.description });
  const cohorts = as(researcher, CohortService);
  const { query } = await cohorts.submitCohortQuery({ projectId: project!.id, name: spec.queryName, sql: spec.sql });
  let last = query!;
  for await (const { query: q } of cohorts.watchCohortQuery({ queryId: query!.id }, { timeoutMs: 120_000 })) if (q) last = q;
  const trusts = last.answers.filter((a) => a.state === TrustAnswerState.OK).map((a) => a.trustCode);
  if (trusts.length === 0) throw new Error(`no trust returned a usable count for "${spec.queryName}"; the demo cannot go on`);
  await as(researcher, ProjectService).stageProject({ projectId: project!.id, trusts });
  return { projectId: project!.id, name: project!.name, trusts };
}

/** Each trust's Trust Admin approves; resolves once every trust has frozen its cohort. */
export async function approveAtEveryTrust(as: As, accounts: DemoAccounts, projectId: string, trusts: string[]): Promise<void> {
  for (const code of trusts) {
    const officer = accounts.trustAdmins.get(code);
    if (!officer) continue;
    await as(officer.token, ProjectService).decideProject({ projectId, trust: code, decision: DecisionState.APPROVED, reason: `approved by the ${code} research ethics committee` });
  }
  await waitFor(
    () => as(accounts.researcher.token, ProjectService).getProject({ projectId }),
    (r) => r.project!.decisions.every((d) => d.state === DecisionState.APPROVED && d.freezeState === FreezeState.FROZEN),
    120_000,
    "every trust freezing the cohort",
  );
}

/** Runs a job of a model at the trusts, watched live; downloads the final global weights into `demoDir/models`. */
export async function trainAndDownload(
  as: As,
  accounts: DemoAccounts,
  job: { modelId: string; trusts: string[]; rounds: number },
  out: NodeJS.WriteStream,
  demoDir: string,
): Promise<DemoTrainingResult> {
  const say = (line: string) => out.write(line + "\n");
  const jobs = as(accounts.researcher.token, JobService);
  const { job: created } = await jobs.createJob({ modelId: job.modelId, trusts: job.trusts, rounds: job.rounds, minUpdates: job.trusts.length, roundTimeoutSeconds: 300, idempotencyKey: crypto.randomUUID() });
  const jobId = created!.id;
  say(`job ${jobId}: ${job.rounds} rounds at ${job.trusts.join(", ")}; live (flip job watch ${jobId}):`);
  const view = new JobView(jobId);
  const output = out.isTTY ? ttyOutput(view, out) : plainOutput(view, out, process.stderr);
  const final = await followJob(jobs, jobId, output, new AbortController().signal);
  output.end(true);
  if (!final || final.state !== JobState.COMPLETED) {
    say(`the job ended ${final ? jobStateLabel(final.state) : "without a state"}: ${final?.endReason ?? ""}`);
    return { jobId, state: final?.state ?? JobState.UNSPECIFIED, weightsPath: undefined };
  }
  const dir = path.join(demoDir, "models");
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${jobId}.safetensors`);
  // As `flip job download` does it: offsets, size and checksum verified, then renamed into place.
  await downloadWeights(jobs, { jobId, round: 0 }, file, process.stderr, new AbortController().signal);
  say(`final global weights: ${file}`);
  return { jobId, state: final.state, weightsPath: file };
}

/** The reference workload's files, as a researcher would upload a copy of them. */
export async function workloadFiles(name: "train-numpy" | "train-torch"): Promise<{ path: string; content: Uint8Array }[]> {
  const dir = path.join(root, "workloads", name);
  const names = (await readdir(dir)).filter((n) => n.endsWith(".py") || n.endsWith(".md"));
  return await Promise.all(names.sort().map(async (n) => ({ path: n, content: await readFile(path.join(dir, n)) })));
}

/**
 * Federated training as its people would run it: a second project that both trusts approve (each freezes
 * its cohort), a model of the reference numpy workload, and a 3-round job across both trusts, watched
 * live; the final global weights are downloaded into the demo's directory.
 */
export async function runDemoTraining(hubUrl: string, accounts: DemoAccounts, out: NodeJS.WriteStream, demoDir: string): Promise<DemoTrainingResult> {
  const as: As = (token, s) => authedClient(hubUrl, s, token);
  const say = (line: string) => out.write(line + "\n");
  const stamp = new Date().toISOString().slice(0, 19).replace("T", " ");
  const project = await approvedEverywhere(as, accounts, {
    name: `Federated diabetes model ${stamp}`,
    description: "A risk model trained at both trusts (demo)",
    queryName: "T2D with hypertension label",
    sql: TRAINING_COHORT_SQL,
  });
  await approveAtEveryTrust(as, accounts, project.projectId, project.trusts);
  say(`project "${project.name}" approved at ${project.trusts.join(", ")}; each froze its cohort`);

  const { model } = await as(accounts.researcher.token, ModelService).createModel({
    projectId: project.projectId,
    name: "hypertension-risk-logreg",
    description: "hypertension among type 2 diabetes patients, from birth year, sex and visits (workloads/train-numpy)",
    image: WORKLOAD_IMAGES.numpy,
    files: await workloadFiles("train-numpy"),
    configJson: JSON.stringify({ local_epochs: 3, learning_rate: 0.5, data: "cohort", label_column: "hypertension", feature_columns: ["year_of_birth", "male", "visits"] }),
    idempotencyKey: crypto.randomUUID(),
  });
  say(`researcher created model "${model!.name}" (image ${model!.image}, ${model!.filePaths.length} files, bundle ${model!.bundleSha256.slice(0, 12)}…)`);
  return await trainAndDownload(as, accounts, { modelId: model!.id, trusts: project.trusts, rounds: 3 }, out, demoDir);
}
