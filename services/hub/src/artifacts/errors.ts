/**
 * Failure modes particular to artifacts. Like `rpc/domain-errors.ts` they know nothing of Connect;
 * `to-connect-error.ts` in this folder maps them to wire codes.
 */

/** A chunk does not start at the stored offset (a gap: bytes in between were never sent). */
export class ArtifactOffsetError extends Error {
  override readonly name = "ArtifactOffsetError";
  constructor(
    readonly expectedOffset: number,
    readonly gotOffset: number,
  ) {
    super(`chunk.offset: expected ${expectedOffset} (the stored offset), got ${gotOffset}; ask GetUploadStatus and resume from its offset`);
  }
}

/** The declared size is over the hub's cap. */
export class ArtifactTooLargeError extends Error {
  override readonly name = "ArtifactTooLargeError";
  constructor(
    readonly sizeBytes: number,
    readonly maxBytes: number,
  ) {
    super(`begin.size_bytes: ${sizeBytes} is over this hub's artifact limit of ${maxBytes} bytes`);
  }
}

/** The stored bytes do not hash to the declared checksum; the stored part was discarded. */
export class ArtifactChecksumError extends Error {
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
export class ArtifactRangeError extends Error {
  override readonly name = "ArtifactRangeError";
  constructor(
    readonly offset: number,
    readonly sizeBytes: number,
  ) {
    super(`offset: ${offset} is past the end of the artifact (${sizeBytes} bytes)`);
  }
}

/** A newer upload stream of the same artifact took over; this one stopped writing. */
export class UploadSupersededError extends Error {
  override readonly name = "UploadSupersededError";
  constructor(readonly artifactId: string) {
    super(`artifact ${artifactId}: a newer upload of the same artifact took over this one`);
  }
}
