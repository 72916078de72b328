/**
 * A hospital PACS for tests: a real Orthanc, filled with synthetic studies.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "@flip/shared/logging/logger.js";
import { startOrthanc, type OrthancOptions, type RunningOrthanc } from "../orthanc/orthanc-process.js";
import { syntheticStudy, type SyntheticStudyOptions } from "./synthetic-study.js";

export interface PacsFixtureOptions {
  /** Orthanc's storage and config (a temp dir of the test). */
  dir: string;
  /** Orthanc name and AET; default "PACS". */
  name?: string;
  /** Open a DICOM port for C-FIND, C-GET and C-MOVE (default false). */
  dimse?: boolean;
  /** C-MOVE destinations. */
  modalities?: OrthancOptions["modalities"];
  /** Stored before startPacs returns. */
  studies?: SyntheticStudyOptions[];
  log?: Logger;
}

export interface PacsFixture {
  orthanc: RunningOrthanc;
  /** Stores Part-10 files with one STOW-RS request; throws unless the PACS kept every one. */
  stowStudies(files: Uint8Array[]): Promise<void>;
}

/** Starts a PACS Orthanc (DICOMweb always, DIMSE on request) and stores `studies` in it. */
export async function startPacs(opts: PacsFixtureOptions): Promise<PacsFixture> {
  const orthanc = await startOrthanc({
    dir: opts.dir,
    name: opts.name ?? "PACS",
    dimse: opts.dimse ?? false,
    modalities: opts.modalities,
    log: opts.log,
  });
  const stowStudies = (files: Uint8Array[]) => stow(orthanc, files);
  try {
    for (const study of opts.studies ?? []) await stowStudies(syntheticStudy(study));
  } catch (e) {
    await orthanc.stop();
    throw e;
  }
  return { orthanc, stowStudies };
}

async function stow(orthanc: RunningOrthanc, files: Uint8Array[]): Promise<void> {
  if (files.length === 0) return;
  const boundary = `flip-${randomBytes(12).toString("hex")}`;
  const parts: Uint8Array[] = [];
  for (const file of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), file, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  const res = await fetch(`${orthanc.dicomWebUrl}/studies`, {
    method: "POST",
    headers: {
      authorization: orthanc.authHeader,
      "content-type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
      accept: "application/dicom+json",
    },
    body: Buffer.concat(parts),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`STOW-RS of ${files.length} files answered HTTP ${res.status}: ${text.slice(0, 300)}`);
  // FailedSOPSequence lists the files the PACS did not keep.
  const answer = JSON.parse(text) as Record<string, { Value?: unknown[] } | undefined>;
  const failed = answer["00081198"]?.Value?.length ?? 0;
  if (failed > 0) throw new Error(`STOW-RS: the PACS refused ${failed} of ${files.length} files: ${text.slice(0, 300)}`);
}
