import { AbortedError, DataLossError, InvalidInputError, OutOfRangeError, TooLargeError } from "../domain/errors.js";

/**
 * Failure modes particular to artifacts. Each subclasses the domain failure mode whose wire code it
 * takes (`rpc/to-connect-error.ts` maps them all).
 */

/** A chunk does not start at the stored offset (a gap: bytes in between were never sent). */
export class ArtifactOffsetError extends InvalidInputError {
  override readonly name = "ArtifactOffsetError";
  constructor(
    readonly expectedOffset: number,
    readonly gotOffset: number,
  ) {
    super("chunk.offset", `expected ${expectedOffset} (the stored offset), got ${gotOffset}; ask GetUploadStatus and resume from its offset`);
  }
}

/** The declared size is over the hub's cap. */
export class ArtifactTooLargeError extends TooLargeError {
  override readonly name = "ArtifactTooLargeError";
  constructor(
    readonly sizeBytes: number,
    readonly maxBytes: number,
  ) {
    super(`begin.size_bytes: ${sizeBytes} is over this hub's artifact limit of ${maxBytes} bytes`);
  }
}

/** The stored bytes do not hash to the declared checksum; the stored part was discarded. */
export class ArtifactChecksumError extends DataLossError {
  override readonly name = "ArtifactChecksumError";
  constructor(
    readonly artifactId: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`artifact ${artifactId}: the uploaded bytes hash to ${actual}, not the declared ${expected}; the upload was discarded, start again from offset 0`);
  }
}

/** A download asked for an offset past the end of the artifact. */
export class ArtifactRangeError extends OutOfRangeError {
  override readonly name = "ArtifactRangeError";
  constructor(
    readonly offset: number,
    readonly sizeBytes: number,
  ) {
    super(`offset: ${offset} is past the end of the artifact (${sizeBytes} bytes)`);
  }
}

/** A newer upload stream of the same artifact took over; this one stopped writing. The client resumes from GetUploadStatus, as after any broken stream. */
export class UploadSupersededError extends AbortedError {
  override readonly name = "UploadSupersededError";
  constructor(readonly artifactId: string) {
    super(`artifact ${artifactId}: a newer upload of the same artifact took over this one`);
  }
}
