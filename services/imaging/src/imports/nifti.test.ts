import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { deidentify } from "../dicom/deidentify.js";
import { syntheticStudy } from "../testing/synthetic-study.js";
import { convertSeriesToNifti, NiftiConversionError } from "./nifti.js";

const study = syntheticStudy({ accessionNumber: "ACC9", patientId: "MRN9", patientName: "DOE^JANE", slices: 6, rows: 32, columns: 32, seed: 9 });
const ctx = { projectId: "p", key: Buffer.alloc(32, 3) };

async function seriesDir(files: Uint8Array[]): Promise<{ root: string; series: string }> {
  const root = await mkdtemp(path.join(os.tmpdir(), "flip-nifti-"));
  const series = path.join(root, "series");
  await mkdir(series);
  await Promise.all(files.map((f, i) => writeFile(path.join(series, `${i}.dcm`), f)));
  return { root, series };
}

test("a de-identified series becomes one NIfTI volume at the destination; the sidecar and scratch are gone", async (t) => {
  const { root, series } = await seriesDir(study.map((f) => deidentify(f, ctx).bytes));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const volumes = await convertSeriesToNifti(series, path.join(root, "scratch"), (i) => path.join(root, "out", `v${i}.nii.gz`));
  t.is(volumes.length, 1);
  t.true(volumes[0]!.sizeBytes > 0);
  t.deepEqual(await readdir(path.join(root, "out")), ["v0.nii.gz"]);
  t.false(existsSync(path.join(root, "scratch", "nifti-out")));
});

test("a series whose sidecar would hold identifying fields is refused and no volume is kept", async (t) => {
  // The identifiable original: dcm2niix copies InstitutionName, StationName, … into the sidecar.
  const { root, series } = await seriesDir(study);
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const err = await t.throwsAsync(convertSeriesToNifti(series, path.join(root, "scratch"), (i) => path.join(root, "out", `v${i}.nii.gz`)), { instanceOf: NiftiConversionError });
  t.regex(err!.message, /identifying fields \(.*InstitutionName.*\)/);
  t.false(err!.message.includes("North General"), "the message names fields, not their values");
  t.false(existsSync(path.join(root, "out")));
});
