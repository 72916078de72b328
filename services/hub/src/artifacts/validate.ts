import { InvalidInputError } from "../domain/errors.js";
import { ArtifactTooLargeError } from "./errors.js";
import { isArtifactId } from "./store.js";

/** A validated `UploadBegin`. */
export interface UploadPlan {
  id: string;
  sizeBytes: number;
  /** Null when the upload sends its checksum in `finish`, after the last chunk. */
  sha256: string | null;
  purpose: string;
  taskId: string | null;
}

/** What an `UploadBegin` carries, before validation (sizes are uint64 on the wire). */
export interface UploadBeginInput {
  artifactId: string;
  sizeBytes: bigint;
  sha256: string;
  purpose: string;
  taskId: string;
}

const SHA256_RE = /^[0-9a-f]{64}$/;
const PURPOSE_RE = /^[a-z][a-z0-9._-]{0,63}$/;

/** Checks an upload's first message; every message names the field at fault. */
export function validateBegin(b: UploadBeginInput, maxBytes: number): UploadPlan {
  const id = b.artifactId.toLowerCase();
  if (!isArtifactId(id)) throw new InvalidInputError("begin.artifact_id", "must be a UUID (the client chooses it; the same id resumes an upload)");
  if (b.sizeBytes > BigInt(maxBytes)) throw new ArtifactTooLargeError(Number(b.sizeBytes), maxBytes);
  if (b.sha256 !== "") validateSha256(b.sha256, "begin.sha256");
  validatePurpose(b.purpose, "begin.purpose");
  if (b.taskId.length > 128) throw new InvalidInputError("begin.task_id", "must be at most 128 characters");
  // The gRPC path decodes uploads itself, past serve()'s input rules; a NUL would reach PostgreSQL.
  if (/[\x00-\x1f]/.test(b.taskId)) throw new InvalidInputError("begin.task_id", "must not contain control characters");
  return { id, sizeBytes: Number(b.sizeBytes), sha256: b.sha256 === "" ? null : b.sha256, purpose: b.purpose, taskId: b.taskId === "" ? null : b.taskId };
}

/** Checks a declared checksum (in `begin`, or in `finish` when `begin` left it empty). */
export function validateSha256(sha256: string, field: string): string {
  if (!SHA256_RE.test(sha256)) throw new InvalidInputError(field, "must be 64 lower-case hex digits (SHA-256 of the whole artifact)");
  return sha256;
}

/** Checks what an artifact is for: a short lower-case word, e.g. "model-update" or "global-weights". */
export function validatePurpose(purpose: string, field: string): string {
  if (!PURPOSE_RE.test(purpose)) {
    throw new InvalidInputError(field, 'must be 1 to 64 lower-case letters, digits, ".", "_" or "-", starting with a letter (e.g. "model-update")');
  }
  return purpose;
}

/** Checks an artifact id given to GetUploadStatus or Download. */
export function validateArtifactId(id: string, field = "artifact_id"): string {
  const lower = id.toLowerCase();
  if (!isArtifactId(lower)) throw new InvalidInputError(field, "must be a UUID");
  return lower;
}
