import { Code, ConnectError } from "@connectrpc/connect";
import type { ImagingClient } from "@flip/imaging/client.js";

/** An image a workload may read: a de-identified DICOM instance or a NIfTI volume of the job's project. */
export interface ImageFile {
  imageId: string;
  /** "dicom" or "nifti". */
  format: string;
  sizeBytes: number;
  studyKey: string;
  seriesKey: string;
  modality: string;
}

/** The project's images, as the trust's imaging service serves them (only studies in the frozen cohort). */
export interface JobImages {
  list(signal?: AbortSignal): Promise<ImageFile[]>;
  read(imageId: string, signal?: AbortSignal): AsyncIterable<Uint8Array>;
}

/** The imaging service refused: its code and message are worded for the workload (no identifiers). */
export class JobImagesError extends Error {
  override readonly name = "JobImagesError";
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

function refusal(e: unknown, trustCode: string): JobImagesError {
  const err = ConnectError.from(e);
  switch (err.code) {
    case Code.NotFound:
    case Code.FailedPrecondition:
    case Code.InvalidArgument:
      return new JobImagesError(err.code, `images at trust ${trustCode}: ${err.rawMessage}`);
    case Code.Canceled:
      return new JobImagesError(Code.Canceled, "the call was cancelled");
    default:
      return new JobImagesError(Code.Unavailable, `images at trust ${trustCode}: the trust's imaging service is unavailable; try again`);
  }
}

/**
 * A job's images through the trust's imaging service, for its project only: the gateway names the
 * project, never the workload, so a job cannot ask for another project's images.
 */
export function imagingServiceImages(imaging: ImagingClient, projectId: string, trustCode: string): JobImages {
  return {
    async list(signal) {
      try {
        const { images } = await imaging.listProjectImages({ projectId }, { signal });
        return images.map((i) => ({ imageId: i.imageId, format: i.format, sizeBytes: Number(i.sizeBytes), studyKey: i.studyKey, seriesKey: i.seriesKey, modality: i.modality }));
      } catch (e) {
        throw refusal(e, trustCode);
      }
    },
    async *read(imageId, signal) {
      try {
        for await (const m of imaging.readImage({ projectId, imageId }, { signal })) if (m.data.byteLength > 0) yield m.data;
      } catch (e) {
        throw refusal(e, trustCode);
      }
    },
  };
}
