/**
 * Where de-identified instances are kept for research: an image store that only the imaging service
 * reaches (Orthanc has no per-user access control).
 */

export interface StoredInstance {
  instanceId: string;
  seriesId: string;
  studyId: string;
  /** The same file (same UIDs) was stored before; one copy is kept. */
  alreadyStored: boolean;
  sizeBytes: number;
}

export interface ResearchStore {
  /** For logs: no credentials. */
  readonly description: string;
  /** Stores one Part-10 file. Ids are derived from the UIDs, so storing the same file twice keeps one copy. */
  storeInstance(part10: Uint8Array, signal?: AbortSignal): Promise<StoredInstance>;
  /** The stored Part-10 file, streamed. Throws ResearchStoreNotFoundError when there is none. */
  readInstance(instanceId: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
  /** Bytes of the stored file; undefined when there is none. */
  instanceSize(instanceId: string): Promise<number | undefined>;
  /** Instance ids of a series, ordered by InstanceNumber when the files have one; [] for an unknown series. */
  seriesInstances(seriesId: string): Promise<string[]>;
  /** False when the study was not there. */
  deleteStudy(studyId: string): Promise<boolean>;
  /** Resolves when the store answers; throws ResearchStoreUnavailableError otherwise. */
  ping(): Promise<void>;
}

/** The store cannot be reached, or answered 5xx or not in time: worth retrying later. */
export class ResearchStoreUnavailableError extends Error {
  override readonly name = "ResearchStoreUnavailableError";
}

/** The store refused the request as it is (a file that is not DICOM, a malformed id, credentials). */
export class ResearchStoreRequestError extends Error {
  override readonly name = "ResearchStoreRequestError";
}

/** The instance asked for is not in the store. */
export class ResearchStoreNotFoundError extends Error {
  override readonly name = "ResearchStoreNotFoundError";
}
