/**
 * `flip job download`: streams a job's global weights into a temporary file next to the target, checks
 * every chunk's offset, the size and the SHA-256 the hub sends last, and only then renames it into place,
 * so `--out` never holds a partial or corrupt file.
 */
import { createHash } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import * as path from "node:path";
import type { Client } from "@connectrpc/connect";
import type { JobService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { bytesLabel } from "./describe.js";

export interface DownloadedWeights {
  path: string;
  round: number;
  sizeBytes: number;
  sha256: string;
}

/** The download did not add up: a gap in the offsets, a wrong size, or a checksum that does not match. */
export class WeightsIntegrityError extends Error {
  override readonly name = "WeightsIntegrityError";
}

/** Files from this size on show progress. */
const PROGRESS_FROM_BYTES = 8 * 1024 * 1024;

/** Progress on stderr: redrawn on one line on a terminal, every 10 % on a log. */
function progressReporter(stderr: NodeJS.WritableStream) {
  const tty = (stderr as NodeJS.WriteStream).isTTY === true;
  let shownTenths = -1;
  let drew = false;
  return {
    update(done: number, total: number) {
      if (total < PROGRESS_FROM_BYTES) return;
      const tenths = Math.floor((done / total) * 10);
      const line = `downloading: ${bytesLabel(done)} of ${bytesLabel(total)} (${Math.floor((done / total) * 100)}%)`;
      if (tty) {
        stderr.write(`\r\x1b[K${line}`);
        drew = true;
      } else if (tenths !== shownTenths) {
        shownTenths = tenths;
        stderr.write(line + "\n");
      }
    },
    end() {
      if (drew) stderr.write("\n");
      drew = false;
    },
  };
}

export async function downloadWeights(
  client: Client<typeof JobService>,
  req: { jobId: string; round: number },
  outPath: string,
  stderr: NodeJS.WritableStream,
  signal: AbortSignal,
): Promise<DownloadedWeights> {
  const target = path.resolve(outPath);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${Date.now()}.partial`);
  const file = await open(temp, "wx", 0o644);
  const hash = createHash("sha256");
  const progress = progressReporter(stderr);
  let written = 0;
  let round = 0;
  let sizeBytes = -1;
  let sha256 = "";
  let renamed = false;
  try {
    for await (const chunk of client.downloadWeights(req, { signal })) {
      if (Number(chunk.offset) !== written) throw new WeightsIntegrityError(`the hub sent bytes at offset ${chunk.offset} after ${written} bytes; try again`);
      if (chunk.data.length) {
        await file.write(chunk.data);
        hash.update(chunk.data);
        written += chunk.data.length;
      }
      round = chunk.round;
      sizeBytes = Number(chunk.sizeBytes);
      progress.update(written, sizeBytes);
      if (chunk.sha256) {
        sha256 = chunk.sha256;
        break;
      }
    }
    progress.end();
    if (!sha256) throw new WeightsIntegrityError(`the download ended after ${written} bytes without its checksum; try again`);
    if (written !== sizeBytes) throw new WeightsIntegrityError(`got ${written} bytes, the hub announced ${sizeBytes}; try again`);
    const actual = hash.digest("hex");
    if (actual !== sha256.toLowerCase()) throw new WeightsIntegrityError(`SHA-256 mismatch: the file hashes to ${actual}, the hub says ${sha256}; the file was not saved`);
    await file.sync();
    await file.close();
    await rename(temp, target);
    renamed = true;
    return { path: target, round, sizeBytes: written, sha256: actual };
  } finally {
    if (!renamed) {
      progress.end();
      await file.close().catch(() => undefined);
      await rm(temp, { force: true });
    }
  }
}
