import { ImagingService, ImagingState, type TrustImagingStatus } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import { ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { describeImagingStatus } from "../cli/commands/imaging.js";
import { WORKLOAD_IMAGES } from "../images/ensure-images.js";
import { authedClient, type DemoAccounts } from "./demo-accounts.js";
import { approveAtEveryTrust, approvedEverywhere, trainAndDownload, workloadFiles, type DemoTrainingResult } from "./training.js";

/**
 * The imaging cohort: people born 2000–2001 with a CT study. Approval makes each trust import every study
 * of its frozen members from its own PACS (accession numbers from its own OMOP data, never from the hub).
 */
export const IMAGING_COHORT_SQL = `
select p.person_id,
       p.year_of_birth,
       case when p.gender_concept_id = 8507 then 1 else 0 end as male
from omop.person p
where p.year_of_birth between 2000 and 2001
  and exists (select 1 from omop.image_occurrence io
              where io.person_id = p.person_id and io.modality_source_value = 'CT')`;

const settled = (s: TrustImagingStatus) => s.state === ImagingState.DONE || s.state === ImagingState.FAILED;

/**
 * Imaging as its people would run it: a project whose researcher asks for NIfTI, approved at both trusts;
 * each trust imports its cohort's studies from its PACS, de-identified, into its research store (the hub
 * sees counts only); then the torch reference workload trains on those images at both trusts.
 */
export async function runDemoImaging(
  hubUrl: string,
  accounts: DemoAccounts,
  out: NodeJS.WriteStream,
  demoDir: string,
  opts: { train: boolean },
): Promise<Partial<DemoTrainingResult> & { imported: boolean; projectId: string }> {
  const as = <S extends Parameters<typeof authedClient>[1]>(token: string, s: S) => authedClient(hubUrl, s, token);
  const say = (line: string) => out.write(line + "\n");
  const stamp = new Date().toISOString().slice(0, 19).replace("T", " ");
  const project = await approvedEverywhere(as, accounts, {
    name: `Chest CT model ${stamp}`,
    description: "A CNN trained on each trust's CT and MR images (demo)",
    queryName: "born 2000-2001 with a CT",
    sql: IMAGING_COHORT_SQL,
  });
  const imaging = as(accounts.researcher.token, ImagingService);
  // Asked before approval, the NIfTI choice applies to the imports approval starts.
  await imaging.importImaging({ projectId: project.projectId, convertToNifti: true });
  await approveAtEveryTrust(as, accounts, project.projectId, project.trusts);
  say(`project "${project.name}" approved at ${project.trusts.join(", ")}; each trust imports its cohort's studies from its PACS (NIfTI asked for):`);

  const deadline = Date.now() + 10 * 60_000;
  let last = "";
  let status: TrustImagingStatus[] = [];
  for (;;) {
    status = (await imaging.getImagingStatus({ projectId: project.projectId })).trusts;
    const line = status.map((s) => `${s.trustCode} ${s.counts?.studiesImported ?? 0n}/${s.counts?.studiesRequested ?? 0n}`).join(", ");
    if (line !== last) say(`  imported: ${line}`);
    last = line;
    if (status.length > 0 && status.every(settled)) break;
    if (Date.now() > deadline) throw new Error("the imaging import did not finish within 10 minutes");
    await new Promise((r) => setTimeout(r, 1_000));
  }
  say(describeImagingStatus(status).replace(/^/gm, "  "));
  say("  (each demo PACS lacks one study of the cohort on purpose: that is the one reported as not found)");
  const imported = status.every((s) => s.state === ImagingState.DONE && (s.counts?.studiesImported ?? 0n) > 0n);
  if (!imported || !opts.train) return { imported, projectId: project.projectId };

  const { model } = await as(accounts.researcher.token, ModelService).createModel({
    projectId: project.projectId,
    name: "chest-ct-cnn",
    description: "a small CNN on each trust's NIfTI volumes (middle slice), proxy labels (workloads/train-torch)",
    image: WORKLOAD_IMAGES.torch,
    files: await workloadFiles("train-torch"),
    configJson: JSON.stringify({ local_epochs: 2, image_size: 32, batch_size: 8, learning_rate: 0.05 }),
    idempotencyKey: crypto.randomUUID(),
  });
  say(`researcher created model "${model!.name}" (image ${model!.image}) on the imported images`);
  return { ...(await trainAndDownload(as, accounts, { modelId: model!.id, trusts: project.trusts, rounds: 2 }, out, demoDir)), imported, projectId: project.projectId };
}
