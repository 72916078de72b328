import { createHash } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { PositionalWrites, writeFully } from "@flip/shared/files/positional-writes.js";
import type { ArtifactClient } from "./client.js";
import { ArtifactChecksumError, ArtifactRetriesExhaustedError } from "./errors.js";
import { hashRange } from "./file-chunks.js";
import { DEFAULT_RETRY, backoffMs, classify, sleep, type TransferOptions } from "./retry.js";

export interface DownloadedArtifact {
  artifactId: string;
  path: string;
  sizeBytes: number;
  sha256: string;
}

/** Bytes of a download queued for the disk or being written: the network and the disk overlap, memory stays bounded. */
const WRITES_IN_FLIGHT_BYTES = 8 * 1024 * 1024;

/**
 * Downloads an artifact to `destination`. Bytes go to `<destination>.part` first, hashed as they arrive;
 * an interrupted download (in this call or an earlier process) resumes from that file's size. When the
 * hub's checksum matches the whole file, the part is renamed into place, so `destination` only ever
 * holds bytes that were verified. The file is not fsynced first: the checksum was verified on the bytes
 * written, and a machine crash before the page cache reaches the disk can at worst damage the file,
 * which a caller that must survive that re-verifies (the returned checksum) and downloads again. A
 * stale part that does not fit (checksum mismatch, or longer than the artifact) is dropped and the
 * download starts once more from 0.
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

/**
 * One Download stream from `from` written into the part file, hashing the whole file (the stored prefix
 * is re-read first). Writes overlap the stream; whatever happens, the part ends at the last byte whose
 * write (and every one before it) finished, so the next attempt resumes from a whole prefix.
 */
async function fetchInto(
  client: ArtifactClient,
  artifactId: string,
  partPath: string,
  from: number,
  signal: AbortSignal | undefined,
  onProgress: (offset: number) => void,
): Promise<{ sha256: string; expectedSha256: string; sizeBytes: number }> {
  const hash = createHash("sha256");
  const fh = await open(partPath, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
  const writes = new PositionalWrites((data, at) => writeFully(fh, data, at), from, WRITES_IN_FLIGHT_BYTES);
  try {
    await hashRange(fh, hash, 0, from);
    // Bytes past `from` (a torn write) are not part of what was hashed.
    await fh.truncate(from);
    let at = from;
    for await (const msg of client.download({ artifactId, offset: from }, { signal })) {
      if (msg.offset !== at) throw new ConnectError(`hub sent offset ${msg.offset}, expected ${at}`, Code.Internal);
      let length = 0;
      for (const p of msg.data) {
        hash.update(p);
        length += p.length;
      }
      if (length > 0) await writes.add(msg.data, at, length);
      at += length;
      onProgress(writes.written);
      if (msg.sha256 !== "") {
        await writes.drain();
        return { sha256: hash.digest("hex"), expectedSha256: msg.sha256, sizeBytes: at };
      }
    }
    throw new ConnectError("the download stream ended before the checksum", Code.Unavailable);
  } finally {
    await writes.settle();
    onProgress(writes.written);
    // A write that failed, or one still missing before a later one that landed, leaves a gap: cut there.
    if ((await fh.stat()).size > writes.written) await fh.truncate(writes.written);
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
