/**
 * One study's import: look the accession number up in the PACS (exactly one study must match), retrieve
 * it instance by instance, de-identify each in memory, store only the de-identified copy in the research
 * store, index its images, and convert its series to NIfTI when the project asked for it.
 * The identifiable original is never written anywhere.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import type pg from "pg";
import type { Logger } from "@flip/shared/logging/logger.js";
import { dicomImagesOfStudy, imageIdOf, upsertImages, type ImageRow } from "../catalog/images.js";
import { findProjectImport, markAttemptFailed, markImported, markNiftiDone, markUnimportable, studyExists, type ClaimedStudy } from "../catalog/studies.js";
import { DeidentificationError, deidentify } from "../dicom/deidentify.js";
import { PacsRequestError, PacsUnavailableError, type PacsClient } from "../pacs/pacs.js";
import { ResearchStoreUnavailableError, type ResearchStore } from "../store/research-store.js";
import type { ImportPacing } from "../config.js";
import type { StudyOutcome } from "./import-metrics.js";
import { convertSeriesToNifti, NiftiConversionError, projectNiftiDir } from "./nifti.js";

export interface ImportDeps {
  db: pg.Pool;
  pacs: PacsClient;
  store: ResearchStore;
  /** The trust's pseudonym key. */
  key: Uint8Array;
  dataDir: string;
  pacing: ImportPacing;
  log: Logger;
}

/** Why a study was not imported, in words that hold no identifier (they are counted at the hub). */
class StudyFailure extends Error {
  constructor(
    readonly reason: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
  }
}

/** Maps what went wrong to a reason a person can act on; details stay in the service's log. */
function failureOf(e: unknown): StudyFailure {
  if (e instanceof StudyFailure) return e;
  if (e instanceof PacsUnavailableError) return new StudyFailure("PACS unreachable", true, { cause: e });
  if (e instanceof PacsRequestError) return new StudyFailure("the PACS refused the request", false, { cause: e });
  if (e instanceof ResearchStoreUnavailableError) return new StudyFailure("research store unreachable", true, { cause: e });
  if (e instanceof DeidentificationError) return new StudyFailure("an image could not be de-identified (not kept)", false, { cause: e });
  if (e instanceof NiftiConversionError) return new StudyFailure(`NIfTI conversion failed: ${e.message}`, e.retryable, { cause: e });
  return new StudyFailure("unexpected error (see the imaging service's log)", true, { cause: e });
}

/** Limits how many promises run at once; `run` waits for a free slot, then starts the work without waiting for it. */
class Slots {
  private readonly running = new Set<Promise<void>>();
  private failed: unknown;
  constructor(private readonly size: number) {}
  async run(work: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.size) await Promise.race(this.running);
    if (this.failed !== undefined) throw this.failed;
    const p: Promise<void> = work()
      .catch((e: unknown) => {
        this.failed ??= e;
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }
  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.failed !== undefined) throw this.failed;
  }
}

function niftiPath(dataDir: string, projectId: string, imageId: string): string {
  return path.join(projectNiftiDir(dataDir, projectId), `${imageId}.nii.gz`);
}

/** Converts each series in `seriesDirs` and records the volumes as the study's NIfTI images. */
async function convertStudy(deps: ImportDeps, study: ClaimedStudy, seriesDirs: Map<string, { dir: string; studyKey: string; modality: string }>, scratch: string, signal: AbortSignal): Promise<void> {
  const rows: ImageRow[] = [];
  for (const [seriesKey, series] of seriesDirs) {
    const volumes = await convertSeriesToNifti(series.dir, scratch, (i) => niftiPath(deps.dataDir, study.projectId, imageIdOf("nifti", study.projectId, `${seriesKey}#${i}`)), signal);
    for (const [i, v] of volumes.entries()) {
      rows.push({
        imageId: imageIdOf("nifti", study.projectId, `${seriesKey}#${i}`),
        accession: study.accession,
        format: "nifti",
        studyKey: series.studyKey,
        seriesKey,
        modality: series.modality,
        location: path.relative(deps.dataDir, v.file),
        sizeBytes: v.sizeBytes,
        instanceNumber: i,
      });
    }
  }
  await upsertImages(deps.db, study.projectId, rows);
}

/** A study stored by an earlier attempt whose NIfTI conversion is still to do: its series are read back from the store. */
async function convertStoredStudy(deps: ImportDeps, study: ClaimedStudy, scratch: string, signal: AbortSignal): Promise<void> {
  const images = await dicomImagesOfStudy(deps.db, study.projectId, study.accession);
  const series = new Map<string, { dir: string; studyKey: string; modality: string }>();
  for (const img of images) {
    let s = series.get(img.seriesKey);
    if (!s) {
      s = { dir: path.join(scratch, `series-${series.size}`), studyKey: img.studyKey, modality: img.modality };
      await mkdir(s.dir, { recursive: true });
      series.set(img.seriesKey, s);
    }
    const chunks: Uint8Array[] = [];
    for await (const c of await deps.store.readInstance(img.location, signal)) chunks.push(c);
    await writeFile(path.join(s.dir, `${img.imageId}.dcm`), Buffer.concat(chunks));
  }
  await convertStudy(deps, study, series, scratch, signal);
  await markNiftiDone(deps.db, study);
}

/** Retrieves, de-identifies and stores the one study matching the accession number. */
async function retrieveAndStore(deps: ImportDeps, study: ClaimedStudy, studyUid: string, scratch: string, signal: AbortSignal): Promise<void> {
  const ctx = { projectId: study.projectId, key: deps.key };
  const rows: ImageRow[] = [];
  const series = new Map<string, { dir: string; studyKey: string; modality: string }>();
  const slots = new Slots(deps.pacing.storeConcurrency);
  let storeStudyId = "";
  let studyKey = "";
  let modality = "";
  let bytes = 0;
  const retrieved = await deps.pacs.retrieveStudy(
    studyUid,
    async (part10) => {
      const d = deidentify(part10, ctx);
      studyKey ||= d.studyUid;
      modality ||= d.modality;
      if (study.convertToNifti) {
        let s = series.get(d.seriesUid);
        if (!s) {
          s = { dir: path.join(scratch, `series-${series.size}`), studyKey: d.studyUid, modality: d.modality };
          await mkdir(s.dir, { recursive: true });
          series.set(d.seriesUid, s);
        }
        await writeFile(path.join(s.dir, `${d.sopInstanceUid}.dcm`), d.bytes);
      }
      await slots.run(async () => {
        const stored = await deps.store.storeInstance(d.bytes, signal);
        storeStudyId = stored.studyId;
        bytes += d.bytes.byteLength;
        rows.push({
          imageId: imageIdOf("dicom", study.projectId, d.sopInstanceUid),
          accession: study.accession,
          format: "dicom",
          studyKey: d.studyUid,
          seriesKey: d.seriesUid,
          modality: d.modality,
          location: stored.instanceId,
          sizeBytes: d.bytes.byteLength,
          instanceNumber: d.instanceNumber ?? null,
        });
      });
    },
    signal,
  );
  await slots.drain();
  if (retrieved.instances === 0 || rows.length === 0) throw new StudyFailure("the PACS returned no images for the study", true);
  try {
    await upsertImages(deps.db, study.projectId, rows);
    if (study.convertToNifti) await convertStudy(deps, study, series, scratch, signal);
    if (await markImported(deps.db, study, { studyKey, storeStudyId, modality, instances: rows.length, bytes, niftiDone: study.convertToNifti })) return;
  } catch (e) {
    if (await studyExists(deps.db, study)) throw e;
  }
  // The project's copies were deleted while this study was on its way: remove what it stored.
  await deps.store.deleteStudy(storeStudyId).catch(() => undefined);
  if (!(await findProjectImport(deps.db, study.projectId))) await rm(projectNiftiDir(deps.dataDir, study.projectId), { recursive: true, force: true });
  deps.log.info({ projectId: study.projectId }, "project deleted during an import; the study's copy was removed");
}

/**
 * Imports one claimed study and records its outcome: imported, not found, ambiguous, queued again after a
 * back-off (PACS or store unreachable), or failed; returns it. Never throws for the study's own failures.
 */
export async function importStudy(deps: ImportDeps, study: ClaimedStudy, signal: AbortSignal): Promise<StudyOutcome> {
  const scratch = path.join(deps.dataDir, "scratch", `${process.pid}-${Math.random().toString(36).slice(2)}`);
  const log = deps.log.child({ projectId: study.projectId, attempt: study.attempt });
  const started = Date.now();
  try {
    await mkdir(scratch, { recursive: true });
    if (study.storeStudyId && study.convertToNifti && !study.niftiDone) {
      await convertStoredStudy(deps, study, scratch, signal);
      log.info({ ms: Date.now() - started }, "study converted to NIfTI");
      return "converted";
    }
    const matches = await deps.pacs.findByAccession(study.accession, signal);
    if (matches.length === 0) {
      await markUnimportable(deps.db, study, "not_found", "no study in the PACS has this accession number");
      log.info("study not found in the PACS");
      return "not_found";
    }
    if (matches.length > 1) {
      await markUnimportable(deps.db, study, "ambiguous", `${matches.length} studies in the PACS have this accession number; none was imported`);
      log.warn({ matches: matches.length }, "accession number matches more than one study");
      return "ambiguous";
    }
    await retrieveAndStore(deps, study, matches[0]!.studyInstanceUid, scratch, signal);
    log.info({ ms: Date.now() - started }, "study imported");
    return "imported";
  } catch (e) {
    if (signal.aborted) return "interrupted"; // stopping: the study is queued again at the next start
    const failure = failureOf(e);
    const cause = failure.cause instanceof Error ? failure.cause : undefined;
    const state = await markAttemptFailed(deps.db, study, { reason: failure.reason, retryable: failure.retryable, attempt: study.attempt }, deps.pacing);
    // The cause's class and message stay here, in the trust's own log (a PACS message could name a UID).
    log.warn({ err: cause ? { name: cause.name, message: cause.message } : undefined, reason: failure.reason, state }, "study import failed");
    return state === "failed" ? "failed" : "retrying";
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}
