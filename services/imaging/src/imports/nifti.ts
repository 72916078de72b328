import { spawn } from "node:child_process";
import { mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { IDENTIFYING_SIDECAR_FIELDS } from "../dicom/profile.js";

/** The folder of a project's NIfTI volumes under the data directory (named by a hash of the project id). */
export function projectNiftiDir(dataDir: string, projectId: string): string {
  return path.join(dataDir, "nifti", createHash("sha256").update(projectId).digest("hex").slice(0, 24));
}

/** dcm2niix could not run or refused the series; `retryable` when another try could help. */
export class NiftiConversionError extends Error {
  override readonly name = "NiftiConversionError";
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export interface NiftiVolume {
  /** Where the volume was moved to. */
  file: string;
  sizeBytes: number;
}

function run(cmd: string, args: string[], signal: AbortSignal | undefined): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], signal, env: { ...process.env, TCP_NODELAY: "1" } });
    let output = "";
    const keep = (b: Buffer) => void (output = (output + b.toString()).slice(-4000));
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (e: NodeJS.ErrnoException) =>
      reject(e.code === "ENOENT" ? new NiftiConversionError("dcm2niix is not installed on the imaging host (apt-get install dcm2niix)", false) : e),
    );
    child.on("close", (code) => resolve({ code, output }));
  });
}

/** Fields of a dcm2niix sidecar that would identify a person or place; a sidecar with one is refused. */
export function identifyingSidecarFields(sidecar: Record<string, unknown>): string[] {
  return IDENTIFYING_SIDECAR_FIELDS.filter((f) => sidecar[f] !== undefined && sidecar[f] !== "");
}

/**
 * Converts one series (a folder of de-identified DICOM files) with dcm2niix into `.nii.gz` volumes, checks
 * that each JSON sidecar holds no identifying field (the sidecars are then dropped: the volume's header
 * carries the geometry), and moves the volumes to `dest(index)`. The scratch folder is removed.
 */
export async function convertSeriesToNifti(seriesDir: string, scratchDir: string, dest: (index: number) => string, signal?: AbortSignal): Promise<NiftiVolume[]> {
  const out = path.join(scratchDir, "nifti-out");
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  try {
    const { code, output } = await run("dcm2niix", ["-z", "y", "-b", "y", "-f", "volume", "-o", out, seriesDir], signal);
    if (code !== 0) throw new NiftiConversionError(`dcm2niix failed (exit ${code}): ${output.split("\n").filter((l) => /error|warning/i.test(l)).slice(-2).join(" ") || "no output"}`, false);
    const names = (await readdir(out)).sort();
    const volumes = names.filter((n) => n.endsWith(".nii.gz"));
    if (volumes.length === 0) throw new NiftiConversionError("dcm2niix wrote no volume for the series (not an image series?)", false);
    for (const sidecarName of names.filter((n) => n.endsWith(".json"))) {
      const sidecar = JSON.parse(await readFile(path.join(out, sidecarName), "utf8")) as Record<string, unknown>;
      const found = identifyingSidecarFields(sidecar);
      if (found.length > 0) throw new NiftiConversionError(`the NIfTI sidecar held identifying fields (${found.join(", ")}); the volume was not kept`, false);
    }
    const result: NiftiVolume[] = [];
    for (const [i, name] of volumes.entries()) {
      const file = dest(i);
      await mkdir(path.dirname(file), { recursive: true });
      await rename(path.join(out, name), file);
      result.push({ file, sizeBytes: (await stat(file)).size });
    }
    return result;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
