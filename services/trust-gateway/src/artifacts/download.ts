import { createHash } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import * as path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ArtifactClient } from "./client.js";
import { ArtifactChecksumError, ArtifactRetriesExhaustedError } from "./errors.js";
import { hashFile } from "./file-digest.js";
import { DEFAULT_RETRY, backoffMs, classify, sleep, type TransferOptions } from "./retry.js";

export interface DownloadedArtifact {
  artifactId: string;
  path: string;
  sizeBytes: number;
  sha256: string;
}

/**
 * Downloads an artifact to `destination`. Bytes go to `<destination>.part` first; an interrupted download
 * (in this call or an earlier process) resumes from that file's size. When the hub's checksum matches the
 * whole file, the part is synced and renamed into place, so `destination` only ever holds a verified
 * artifact. A stale part that does not fit (checksum mismatch, or longer than the artifact) is dropped and
 * the download starts once more from 0.
 */
export async function downloadArtifact(client: ArtifactClient, artifactId: string, destination: string, opts: TransferOptions = {}): Promise<DownloadedArtifact> {
  const policy = opts.retry ?? DEFAULT_RETRY;
  const partPath = `${destination}.part`;
  let failures = 0;
  let restarted = false;
  for (;;) {
    const from = await sizeOrZero(partPath);
    let reached = from;
    try {
      const got = await fetchInto(client, artifactId, partPath, from, opts.signal, (n) => (reached = n));
      if (got.sha256 === got.expectedSha256) {
        await rename(partPath, destination);
        await syncDir(path.dirname(destination));
        opts.log?.info({ artifactId, sizeBytes: got.sizeBytes, resumedFrom: from }, "artifact downloaded");
        return { artifactId, path: destination, sizeBytes: got.sizeBytes, sha256: got.sha256 };
      }
      await rm(partPath, { force: true });
      const mismatch = new ArtifactChecksumError(artifactId, `artifact ${artifactId}: downloaded bytes hash to ${got.sha256}, not the hub's ${got.expectedSha256}`, undefined);
      // A part left by an earlier attempt may belong to other bytes; one fresh start settles it.
      if (from > 0 && !restarted) {
        restarted = true;
        opts.log?.warn({ artifactId }, "resumed download failed its checksum; starting again from 0");
        continue;
      }
      throw mismatch;
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      if (ConnectError.from(e).code === Code.OutOfRange && from > 0 && !restarted) {
        // The part is longer than the artifact: it cannot be a prefix of it.
        restarted = true;
        await rm(partPath, { force: true });
        continue;
      }
      const verdict = classify(artifactId, e);
      if (!verdict.retry) throw verdict.error;
      if (reached > from) failures = 0;
      failures++;
      if (failures >= policy.maxAttempts) throw new ArtifactRetriesExhaustedError(artifactId, failures, verdict.error.code, { cause: verdict.error });
      const delay = backoffMs(policy, failures);
      opts.log?.warn({ artifactId, attempt: failures, code: Code[verdict.error.code], offset: reached, delayMs: Math.round(delay) }, "artifact download interrupted; resuming");
      await sleep(delay, opts.signal);
    }
  }
}

/** One Download stream from `from` appended to the part file, hashing the whole file (the stored prefix is re-read). */
async function fetchInto(
  client: ArtifactClient,
  artifactId: string,
  partPath: string,
  from: number,
  signal: AbortSignal | undefined,
  onProgress: (offset: number) => void,
): Promise<{ sha256: string; expectedSha256: string; sizeBytes: number }> {
  const hash = createHash("sha256");
  await hashFile(partPath, hash, from);
  const fh = await open(partPath, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
  try {
    // Bytes past `from` (a torn write) are not part of what was hashed.
    await fh.truncate(from);
    let at = from;
    for await (const msg of client.download({ artifactId, offset: BigInt(from) }, { signal })) {
      if (Number(msg.offset) !== at) throw new ConnectError(`hub sent offset ${msg.offset}, expected ${at}`, Code.Internal);
      for (let rest = msg.data; rest.length > 0; ) {
        const { bytesWritten } = await fh.write(rest, 0, rest.length, at);
        hash.update(rest.subarray(0, bytesWritten));
        rest = rest.subarray(bytesWritten);
        at += bytesWritten;
      }
      onProgress(at);
      if (msg.sha256 !== "") {
        await fh.sync();
        return { sha256: hash.digest("hex"), expectedSha256: msg.sha256, sizeBytes: at };
      }
    }
    throw new ConnectError("the download stream ended before the checksum", Code.Unavailable);
  } finally {
    await fh.close();
  }
}

async function sizeOrZero(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw e;
  }
}

/** A rename is durable only once its directory entry is. */
async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, fsConstants.O_RDONLY);
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
