import { Code, ConnectError } from "@connectrpc/connect";
import { toConnectError } from "../rpc/to-connect-error.js";
import { ArtifactChecksumError, ArtifactOffsetError, ArtifactRangeError, ArtifactTooLargeError, UploadSupersededError } from "./errors.js";

/** Maps artifact errors to their codes, then defers to the hub's shared mapping for everything else. */
export function artifactErrorToConnect(e: unknown): ConnectError {
  const wrap = (code: Code) => new ConnectError((e as Error).message, code, undefined, undefined, e);
  if (e instanceof ArtifactOffsetError) return wrap(Code.InvalidArgument);
  if (e instanceof ArtifactTooLargeError) return wrap(Code.ResourceExhausted);
  if (e instanceof ArtifactChecksumError) return wrap(Code.DataLoss);
  if (e instanceof ArtifactRangeError) return wrap(Code.OutOfRange);
  if (e instanceof UploadSupersededError) return wrap(Code.Aborted);
  return toConnectError(e);
}
