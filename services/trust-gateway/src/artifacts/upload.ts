import { createHash, randomUUID, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { BufferPool } from "@flip/shared/files/buffer-pool.js";
import type { ArtifactClient } from "./client.js";
import { ArtifactRejectedError, ArtifactRetriesExhaustedError } from "./errors.js";
import { CHUNK_BYTES, fileChunks, hashRange } from "./file-chunks.js";
import { DEFAULT_RETRY, backoffMs, classify, sleep, type TransferOptions } from "./retry.js";

export interface UploadSource {
  /** Reuse an id to resume an upload begun by an earlier process; a new UUID otherwise. */
  artifactId?: string;
  /** What it is, e.g. "model-update", "result". */
  purpose: string;
  taskId?: string;
  /** The file to upload; it must not change while it uploads. */
  source: string;
}

export interface UploadedArtifact {
  artifactId: string;
  sizeBytes: number;
  sha256: string;
}

interface UploadTarget {
  artifactId: string;
  sizeBytes: number;
  purpose: string;
  taskId: string;
}

/**
 * Uploads a file as an artifact: asks the hub how much it already holds, sends the rest in 1 MiB chunks
 * while hashing them, and sends the SHA-256 in `finish` after the last byte, for the hub to verify
 * (so the file is read once, not hashed first and sent after). A resume hashes the stored prefix from
 * the file before it sends more. A broken connection or a restarting hub is retried with backoff,
 * resuming from the hub's stored offset each time; attempts that made progress do not count against the
 * limit. A checksum mismatch after a resume starts once more from 0 (the hub discarded the upload: its
 * stored prefix may have been damaged by a crash). Refusals (bad key, disabled trust, checksum mismatch,
 * id taken) throw at once, typed.
 */
export async function uploadArtifact(client: ArtifactClient, what: UploadSource, opts: TransferOptions = {}): Promise<UploadedArtifact> {
  const policy = opts.retry ?? DEFAULT_RETRY;
  const artifactId = what.artifactId ?? randomUUID();
  const fh = await open(what.source, "r");
  try {
    const sizeBytes = (await fh.stat()).size;
    const target: UploadTarget = { artifactId, sizeBytes, purpose: what.purpose, taskId: what.taskId ?? "" };
    const digest = new PrefixDigest(fh, sizeBytes);
    let failures = 0;
    let bestOffset = -1;
    let restarted = false;
    for (;;) {
      let offset = 0;
      try {
        offset = await storedOffset(client, artifactId, sizeBytes, opts.signal);
        if (offset > bestOffset) {
          // Progress since the last failure: a long upload over a flaky link keeps going as long as it advances.
          if (bestOffset >= 0) failures = 0;
          bestOffset = offset;
        }
        const res = await sendFrom(client, fh, digest, target, offset, opts.signal);
        if (res.complete) {
          opts.log?.info({ artifactId, sizeBytes, resumedFrom: offset }, "artifact uploaded");
          return { artifactId, sizeBytes, sha256: digest.sha256() };
        }
        // Every byte and the checksum were sent yet the hub did not complete: resume from its offset.
        throw new ConnectError(`hub stored ${res.storedBytes} of ${sizeBytes} bytes after the whole file was sent`, Code.Internal);
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        if (ConnectError.from(e).code === Code.DataLoss && offset > 0 && !restarted) {
          restarted = true;
          bestOffset = -1;
          opts.log?.warn({ artifactId, resumedFrom: offset }, "resumed upload failed its checksum at the hub; starting again from 0");
          continue;
        }
        const verdict = classify(artifactId, e);
        if (!verdict.retry) throw verdict.error;
        failures++;
        if (failures >= policy.maxAttempts) throw new ArtifactRetriesExhaustedError(artifactId, failures, verdict.error.code, { cause: verdict.error });
        const delay = backoffMs(policy, failures);
        opts.log?.warn({ artifactId, attempt: failures, code: Code[verdict.error.code], delayMs: Math.round(delay) }, "artifact upload interrupted; resuming");
        await sleep(delay, opts.signal);
      }
    }
  } finally {
    await fh.close();
  }
}

/** Where the hub's copy ends: its stored offset, all of it when complete, 0 when it has never seen the id. */
async function storedOffset(client: ArtifactClient, artifactId: string, sizeBytes: number, signal: AbortSignal | undefined): Promise<number> {
  try {
    const s = await client.getUploadStatus({ artifactId }, { signal });
    return s.complete ? sizeBytes : Number(s.storedBytes);
  } catch (e) {
    if (ConnectError.from(e).code === Code.NotFound) return 0;
    throw e;
  }
}

/**
 * One Upload stream: `begin` without a checksum, the file from `offset` to its end (hashed as it goes),
 * then `finish` with the checksum. A complete artifact gets `begin` and `finish` alone, which the hub
 * compares with the checksum it holds.
 */
async function sendFrom(client: ArtifactClient, fh: FileHandle, digest: PrefixDigest, target: UploadTarget, offset: number, signal: AbortSignal | undefined) {
  const { size } = await fh.stat();
  if (size !== target.sizeBytes) {
    throw new ArtifactRejectedError(target.artifactId, `the file changed while uploading (${size} bytes now, ${target.sizeBytes} when the upload began)`, undefined);
  }
  // Before the stream opens, so the hub does not hold an idle stream while a long prefix is read.
  await digest.coverPrefix(offset);
  const call = client.upload({ signal });
  try {
    await call.begin({ ...target, sizeBytes: BigInt(target.sizeBytes), sha256: "" });
    // Read buffers go back to the pool once the stream has written them, so a few serve the whole file.
    const buffers = new BufferPool(CHUNK_BYTES, 8);
    for await (const { at, data } of fileChunks(fh, offset, target.sizeBytes, CHUNK_BYTES, buffers)) {
      digest.add(data);
      await call.chunk(at, data, () => buffers.give(data));
    }
    await call.finish(digest.sha256());
    return await call.response();
  } finally {
    call.cancel();
  }
}

/**
 * SHA-256 of the file's prefix that has been sent (or that the hub holds), extended as chunks go out. A
 * resume that starts elsewhere than where the hash stands re-reads the prefix from the file.
 */
class PrefixDigest {
  private hash: Hash = createHash("sha256");
  private hashedTo = 0;
  private hex: string | undefined;

  constructor(
    private readonly fh: FileHandle,
    private readonly sizeBytes: number,
  ) {}

  /** Makes the hash cover exactly [0, offset), so the chunks sent next extend it. */
  async coverPrefix(offset: number): Promise<void> {
    if (this.hex !== undefined || offset === this.hashedTo) return;
    if (offset < this.hashedTo) {
      this.hash = createHash("sha256");
      this.hashedTo = 0;
    }
    await hashRange(this.fh, this.hash, this.hashedTo, offset);
    this.hashedTo = offset;
  }

  /** The next bytes of the file, in order (ignored once the whole file was hashed). */
  add(data: Uint8Array): void {
    if (this.hex !== undefined) return;
    this.hash.update(data);
    this.hashedTo += data.length;
  }

  /** The whole file's checksum; every byte must have been hashed. */
  sha256(): string {
    if (this.hex === undefined) {
      if (this.hashedTo !== this.sizeBytes) throw new Error(`hashed ${this.hashedTo} of ${this.sizeBytes} bytes`);
      this.hex = this.hash.digest("hex");
    }
    return this.hex;
  }
}
