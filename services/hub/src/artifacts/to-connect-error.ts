import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "@flip/shared/logging/logger.js";
import { toConnectError } from "../rpc/to-connect-error.js";
import { ArtifactChecksumError, ArtifactOffsetError, ArtifactRangeError, ArtifactTooLargeError, UploadSupersededError } from "./errors.js";

/** The wire code of each artifact error. */
function codeOf(e: Error): Code | undefined {
  if (e instanceof ArtifactOffsetError) return Code.InvalidArgument;
  if (e instanceof ArtifactTooLargeError) return Code.ResourceExhausted;
  if (e instanceof ArtifactChecksumError) return Code.DataLoss;
  if (e instanceof ArtifactRangeError) return Code.OutOfRange;
  // The client resumes from GetUploadStatus, as after any broken stream.
  if (e instanceof UploadSupersededError) return Code.Aborted;
  return undefined;
}

/** Maps artifact errors to their codes, then defers to the hub's shared mapping for everything else. */
export function artifactErrorToConnect(e: unknown): ConnectError {
  if (e instanceof Error) {
    const code = codeOf(e);
    if (code !== undefined) return new ConnectError(e.message, code, undefined, undefined, e);
  }
  return toConnectError(e);
}

/** The wire error of an artifact RPC that failed; only unexpected failures (Internal) are logged, the rest are the caller's business. */
export function artifactRpcError(log: Logger, rpc: string, e: unknown): ConnectError {
  const err = artifactErrorToConnect(e);
  if (err.code === Code.Internal) log.error({ err: e, rpc }, "unexpected error in artifact handler");
  return err;
}
