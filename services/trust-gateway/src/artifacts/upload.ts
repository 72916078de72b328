import { randomUUID } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { UploadRequestSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import type { ArtifactClient } from "./client.js";
import { ArtifactRejectedError, ArtifactRetriesExhaustedError } from "./errors.js";
import { CHUNK_BYTES, digestFile } from "./file-digest.js";
import { DEFAULT_RETRY, backoffMs, classify, sleep, type TransferOptions } from "./retry.js";

export interface UploadSource {
  /** Reuse an id to resume an upload begun by an earlier process; a new UUID otherwise. */
  artifactId?: string;
  /** What it is, e.g. "model-update", "result". */
  purpose: string;
  taskId?: string;
  /** The file to upload; it must not change while it uploads (its checksum is taken first). */
  source: string;
}

export interface UploadedArtifact {
  artifactId: string;
  sizeBytes: number;
  sha256: string;
}

type UploadMessage = MessageInitShape<typeof UploadRequestSchema>;

/**
 * Uploads a file as an artifact: takes its SHA-256 and size, asks the hub how much it already holds, and
 * sends the rest in 1 MiB chunks. A broken connection or a restarting hub is retried with backoff,
 * resuming from the hub's stored offset each time; attempts that made progress do not count against
 * the limit. Refusals (bad key, disabled trust, checksum mismatch, id taken) throw at once, typed.
 */
export async function uploadArtifact(client: ArtifactClient, what: UploadSource, opts: TransferOptions = {}): Promise<UploadedArtifact> {
  const policy = opts.retry ?? DEFAULT_RETRY;
  const artifactId = what.artifactId ?? randomUUID();
  const { sha256, sizeBytes } = await digestFile(what.source);
  const begin: UploadMessage = {
    part: { case: "begin", value: { artifactId, sizeBytes: BigInt(sizeBytes), sha256, purpose: what.purpose, taskId: what.taskId ?? "" } },
  };
  let failures = 0;
  let bestOffset = -1;
  for (;;) {
    try {
      const offset = await storedOffset(client, artifactId, opts.signal);
      if (offset > bestOffset) {
        // Progress since the last failure: a long upload over a flaky link keeps going as long as it advances.
        if (bestOffset >= 0) failures = 0;
        bestOffset = offset;
      }
      const res = await sendFrom(client, what.source, begin, offset, sizeBytes, opts.signal);
      if (res.complete) {
        opts.log?.info({ artifactId, sizeBytes, resumedFrom: offset }, "artifact uploaded");
        return { artifactId, sizeBytes, sha256 };
      }
      // Every byte was sent yet the hub did not complete: it must have dropped some; resume from its offset.
      throw new ConnectError(`hub stored ${res.storedBytes} of ${sizeBytes} bytes after the whole file was sent`, Code.Internal);
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      const verdict = classify(artifactId, e);
      if (!verdict.retry) throw verdict.error;
      failures++;
      if (failures >= policy.maxAttempts) throw new ArtifactRetriesExhaustedError(artifactId, failures, verdict.error.code, { cause: verdict.error });
      const delay = backoffMs(policy, failures);
      opts.log?.warn({ artifactId, attempt: failures, code: Code[verdict.error.code], delayMs: Math.round(delay) }, "artifact upload interrupted; resuming");
      await sleep(delay, opts.signal);
    }
  }
}

/** The hub's durable offset for the artifact, 0 when it has never seen it. */
async function storedOffset(client: ArtifactClient, artifactId: string, signal: AbortSignal | undefined): Promise<number> {
  try {
    const s = await client.getUploadStatus({ artifactId }, { signal });
    return Number(s.storedBytes);
  } catch (e) {
    if (ConnectError.from(e).code === Code.NotFound) return 0;
    throw e;
  }
}

/** One Upload stream: `begin`, then the file from `offset` to its end. A complete artifact gets `begin` alone (the hub checks the checksum). */
async function sendFrom(client: ArtifactClient, file: string, begin: UploadMessage, offset: number, sizeBytes: number, signal: AbortSignal | undefined) {
  const fh = await open(file, "r");
  try {
    const { size } = await fh.stat();
    if (size !== sizeBytes) throw new ArtifactRejectedError(artifactIdOf(begin), `${file} changed while uploading (${size} bytes now, ${sizeBytes} when hashed)`, undefined);
    return await client.upload(requests(fh, begin, offset, sizeBytes), { signal });
  } finally {
    // The transport may abandon the generator mid-way without returning it; the handle is closed here instead.
    await fh.close();
  }
}

async function* requests(fh: FileHandle, begin: UploadMessage, from: number, sizeBytes: number): AsyncGenerator<UploadMessage> {
  yield begin;
  for (let at = from; at < sizeBytes; ) {
    const want = Math.min(CHUNK_BYTES, sizeBytes - at);
    // A fresh buffer per chunk: the transport may still hold the previous one while this is read.
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, at);
    // The next attempt's size check turns this into a clear refusal.
    if (bytesRead === 0) throw new Error(`the file shrank while uploading (ended at ${at} of ${sizeBytes} bytes)`);
    yield { part: { case: "chunk", value: { offset: BigInt(at), data: buf.subarray(0, bytesRead) } } };
    at += bytesRead;
  }
}

function artifactIdOf(begin: UploadMessage): string {
  return begin.part?.case === "begin" ? (begin.part.value.artifactId ?? "") : "";
}
