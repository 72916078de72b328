/** The gateway's side of flip.link.v1.ArtifactService: resumable, checksummed uploads and downloads. */
export { createArtifactClient, type ArtifactClient, type ArtifactClientOptions, type CallOptions, type UploadCall } from "./client.js";
export type { DownloadPiece } from "./chunk-codec.js";
export { uploadArtifact, type UploadSource, type UploadedArtifact } from "./upload.js";
export { downloadArtifact, type DownloadedArtifact } from "./download.js";
export { ArtifactTransferError, ArtifactAuthError, ArtifactChecksumError, ArtifactRejectedError, ArtifactRetriesExhaustedError } from "./errors.js";
export { DEFAULT_RETRY, type RetryPolicy, type TransferOptions } from "./retry.js";
