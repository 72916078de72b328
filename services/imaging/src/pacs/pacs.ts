/**
 * What the imaging service needs from a hospital PACS, whatever protocol it speaks: find the studies
 * of an accession number, and retrieve a study instance by instance.
 */

/** One study as the PACS describes it. */
export interface PacsStudy {
  studyInstanceUid: string;
  accessionNumber: string;
  /** ModalitiesInStudy, several joined with "\\" as DICOM writes them (e.g. "CT" or "CT\\SR"); "" when not answered. */
  modality: string;
  seriesCount: number;
  instanceCount: number;
}

export interface RetrievedStudy {
  instances: number;
  /** Sum of the Part-10 files handed over. */
  bytes: number;
}

export interface PacsClient {
  /** For logs: "dicomweb http://host:port/dicom-web" or "dimse PACS@host:port (C-GET)". No credentials. */
  readonly description: string;
  /** Studies whose AccessionNumber equals `accession` exactly (case included): QIDO-RS ignores case, so filter. */
  findByAccession(accession: string, signal?: AbortSignal): Promise<PacsStudy[]>;
  /**
   * Every instance of the study, each handed to `onInstance` as a Part-10 file as it arrives. The next
   * one is not read before `onInstance` settles (back-pressure); when it throws, the retrieve stops and
   * rejects with that error.
   */
  retrieveStudy(studyInstanceUid: string, onInstance: (part10: Uint8Array) => Promise<void>, signal?: AbortSignal): Promise<RetrievedStudy>;
  close(): Promise<void>;
}

/**
 * The PACS cannot be reached, or answered 5xx, 408, 429 or not in time: worth retrying later. The
 * message names the PACS (its description) and the cause, never credentials.
 */
export class PacsUnavailableError extends Error {
  override readonly name = "PacsUnavailableError";
}

/** The PACS answered but the request cannot succeed as it is (4xx other than 408/429, a malformed answer, a refused association). */
export class PacsRequestError extends Error {
  override readonly name = "PacsRequestError";
}

/** StudyInstanceUID as DICOM allows it; checked before it goes into a URL or a query. */
export function checkStudyUid(pacs: string, studyInstanceUid: string): void {
  if (!/^[0-9]+(\.[0-9]+)*$/.test(studyInstanceUid) || studyInstanceUid.length > 64) {
    throw new PacsRequestError(`${pacs}: ${JSON.stringify(studyInstanceUid)} is not a StudyInstanceUID (digits and dots, at most 64)`);
  }
}

/** The caller's abort reason when it aborted, else undefined. */
export function callerAbort(signal: AbortSignal | undefined): unknown {
  return signal?.aborted ? (signal.reason ?? new DOMException("aborted", "AbortError")) : undefined;
}
