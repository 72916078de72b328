import type { Code } from "@connectrpc/connect";

/** Why an artifact transfer stopped for good. Each carries the hub's error (or the local one) as `cause`. */
export class ArtifactTransferError extends Error {
  override readonly name: string = "ArtifactTransferError";
  constructor(
    readonly artifactId: string,
    message: string,
    /** The hub's code, when the hub answered. */
    readonly code: Code | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The hub refused the trust's key (wrong, rotated, revoked) or the trust is disabled: retrying cannot help. */
export class ArtifactAuthError extends ArtifactTransferError {
  override readonly name = "ArtifactAuthError";
}

/** The bytes do not match the checksum (the hub's DATA_LOSS on upload, or a local check on download). */
export class ArtifactChecksumError extends ArtifactTransferError {
  override readonly name = "ArtifactChecksumError";
}

/** The hub refused the request itself (e.g. FAILED_PRECONDITION: the id is taken by other bytes; NOT_FOUND). */
export class ArtifactRejectedError extends ArtifactTransferError {
  override readonly name = "ArtifactRejectedError";
}

/** Transient failures went on without progress for every allowed attempt; `cause` is the last one. */
export class ArtifactRetriesExhaustedError extends ArtifactTransferError {
  override readonly name = "ArtifactRetriesExhaustedError";
  constructor(
    artifactId: string,
    readonly attempts: number,
    code: Code | undefined,
    options: { cause: unknown },
  ) {
    super(artifactId, `artifact ${artifactId}: gave up after ${attempts} attempts without progress`, code, options);
  }
}
