import { createHash, randomBytes } from "node:crypto";
import { chmod, chown, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";

/** The user and group the workload runs as (nobody:nogroup): it owns only its scratch directory. */
export const WORKLOAD_UID = 65534;
export const WORKLOAD_GID = 65534;

/** What the gateway keeps about a job at the trust, so a restarted gateway carries on where it was. */
export interface JobSettings {
  jobId: string;
  projectId: string;
  image: string;
  gpus: number;
  gpuIndices: number[];
  configJson: string;
  rounds: number;
  evaluate: boolean;
  roundTimeoutSeconds: number;
  bundleArtifactId: string;
}

export interface JobState {
  settings: JobSettings;
  /** The round the trust is on (0 before the first). */
  round: number;
  /** Whether that round starts from global weights (in weights/round-N.safetensors, complete). */
  roundHasWeights: boolean;
}

/** A round the workload finished: its update's sample count (0 and no update for an evaluation). */
export interface RoundDone {
  samples: bigint;
  evaluated: boolean;
}

/** Why a bundle cannot be unpacked; the message names the file and is safe to show the researcher. */
export class BundlePathError extends Error {
  override readonly name = "BundlePathError";
}

/**
 * A job's directory at the trust, `<root>/<jobId>`:
 * `bundle/` (the researcher's files, mounted read-only), `runtime/` (the runtime API socket),
 * `scratch/` (the workload's only writable directory), `weights/round-N.safetensors` (global weights),
 * `updates/round-N.safetensors` and `round-N.json` (what the workload pushed), `token` (0600) and
 * `job.json` (settings and current round).
 */
export class JobWorkspace {
  readonly dir: string;

  constructor(
    root: string,
    readonly jobId: string,
  ) {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(jobId)) throw new Error(`not a job id: ${JSON.stringify(jobId.slice(0, 80))}`);
    this.dir = path.join(root, jobId);
  }

  get bundleDir(): string {
    return path.join(this.dir, "bundle");
  }
  get runtimeDir(): string {
    return path.join(this.dir, "runtime");
  }
  get socketPath(): string {
    return path.join(this.runtimeDir, "runtime.sock");
  }
  get scratchDir(): string {
    return path.join(this.dir, "scratch");
  }
  weightsPath(round: number): string {
    return path.join(this.dir, "weights", `round-${round}.safetensors`);
  }
  updatePath(round: number): string {
    return path.join(this.dir, "updates", `round-${round}.safetensors`);
  }
  private roundDonePath(round: number): string {
    return path.join(this.dir, "updates", `round-${round}.json`);
  }

  /** Creates the directories (idempotent). The workload's user may enter runtime/ and own scratch/. */
  async ensure(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const d of ["weights", "updates"]) await mkdir(path.join(this.dir, d), { recursive: true, mode: 0o700 });
    await mkdir(this.bundleDir, { recursive: true, mode: 0o755 });
    await mkdir(this.runtimeDir, { recursive: true });
    await chmod(this.runtimeDir, 0o755);
    await mkdir(this.scratchDir, { recursive: true });
    try {
      await chown(this.scratchDir, WORKLOAD_UID, WORKLOAD_GID);
      await chmod(this.scratchDir, 0o700);
    } catch (e) {
      // A gateway that is not root cannot give the directory away; the workload still needs to write it.
      if ((e as NodeJS.ErrnoException).code !== "EPERM") throw e;
      await chmod(this.scratchDir, 0o777);
    }
  }

  /** The job's runtime token: the one handed to its container before (a restarted gateway must accept it), or a new one. */
  async token(): Promise<string> {
    const file = path.join(this.dir, "token");
    try {
      const existing = (await readFile(file, "utf8")).trim();
      if (/^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    const token = randomBytes(32).toString("base64url");
    await writeAtomically(file, token, 0o600);
    return token;
  }

  async readState(): Promise<JobState | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.dir, "job.json"), "utf8")) as JobState;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT" || e instanceof SyntaxError) return undefined;
      throw e;
    }
  }

  async writeState(state: JobState): Promise<void> {
    await writeAtomically(path.join(this.dir, "job.json"), JSON.stringify(state), 0o600);
  }

  /** Whether the bundle of `artifactId` was unpacked completely. */
  async hasBundle(artifactId: string): Promise<boolean> {
    try {
      return (JSON.parse(await readFile(path.join(this.dir, "bundle.json"), "utf8")) as { artifactId?: string }).artifactId === artifactId;
    } catch {
      return false;
    }
  }

  /**
   * Writes the bundle's files under bundle/ (readable by the workload, writable by nobody but the
   * gateway), replacing what an interrupted unpack left. Throws BundlePathError for a path that would
   * leave the directory.
   */
  async unpackBundle(artifactId: string, files: readonly { path: string; content: Uint8Array }[]): Promise<void> {
    const relPaths = files.map((f) => bundleFilePath(f.path));
    await rm(path.join(this.dir, "bundle.json"), { force: true });
    const staging = path.join(this.dir, `bundle.unpacking`);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { mode: 0o755 });
    for (const [i, rel] of relPaths.entries()) {
      const target = path.join(staging, rel);
      try {
        await mkdirReadable(staging, path.dirname(rel));
        await writeFile(target, files[i]!.content, { flag: "wx" });
        await chmod(target, 0o644);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EEXIST" || code === "ENOTDIR" || code === "EISDIR") {
          throw new BundlePathError(`bundle file ${JSON.stringify(files[i]!.path.slice(0, 200))} clashes with another file of the bundle`, { cause: e });
        }
        throw e;
      }
    }
    await chmod(staging, 0o755);
    await rm(this.bundleDir, { recursive: true, force: true });
    await rename(staging, this.bundleDir);
    await writeAtomically(path.join(this.dir, "bundle.json"), JSON.stringify({ artifactId }), 0o600);
  }

  /** Records that the workload finished `round` (after its update, if any, was persisted). */
  async markRoundDone(round: number, done: RoundDone): Promise<void> {
    await writeAtomically(this.roundDonePath(round), JSON.stringify({ samples: done.samples.toString(), evaluated: done.evaluated }), 0o600);
  }

  /** The rounds the workload finished, from the disk (what a restarted gateway knows). */
  async roundsDone(): Promise<Map<number, RoundDone>> {
    const out = new Map<number, RoundDone>();
    let names: string[];
    try {
      names = await readdir(path.join(this.dir, "updates"));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return out;
      throw e;
    }
    for (const name of names) {
      const m = /^round-(\d+)\.json$/.exec(name);
      if (!m) continue;
      try {
        const raw = JSON.parse(await readFile(path.join(this.dir, "updates", name), "utf8")) as { samples: string; evaluated: boolean };
        out.set(Number(m[1]), { samples: BigInt(raw.samples), evaluated: raw.evaluated });
      } catch {
        // A torn record is as good as none: the round is not done.
      }
    }
    return out;
  }

  async exists(): Promise<boolean> {
    try {
      return (await stat(this.dir)).isDirectory();
    } catch {
      return false;
    }
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A bundle file's path, checked: relative, "/"-separated, with no "..", "." or empty segments, no
 * backslashes or control characters.
 */
export function bundleFilePath(p: string): string {
  const bad = (why: string) => new BundlePathError(`bundle file ${JSON.stringify(p.slice(0, 200))} ${why}`);
  if (p === "") throw bad("has an empty path");
  if (p.startsWith("/")) throw bad("has an absolute path; bundle paths are relative");
  if (/[\u0000-\u001f\u007f\\]/.test(p)) throw bad("contains a backslash or control character");
  const segments = p.split("/");
  if (segments.some((s) => s === ".." || s === "." || s === "")) throw bad('has an empty, "." or ".." segment');
  if (p.length > 1024) throw bad("is longer than 1024 characters");
  return segments.join(path.sep);
}

/**
 * The id of a trust's update for a job's round: the same on every attempt, so an upload interrupted by a
 * gateway restart resumes rather than leaving a second copy. A UUID (version 8, name-derived) from
 * SHA-256 of the three.
 */
export function updateArtifactId(jobId: string, trustCode: string, round: number): string {
  const h = createHash("sha256").update(`flip.model-update\0${jobId}\0${trustCode}\0${round}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Writes a file whole or not at all: a temporary file, synced, renamed into place. */
export async function writeAtomically(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(4).toString("hex")}`;
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

async function mkdirReadable(root: string, rel: string): Promise<void> {
  if (rel === "." || rel === "") return;
  let at = root;
  for (const segment of rel.split(path.sep)) {
    at = path.join(at, segment);
    try {
      await mkdir(at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      continue;
    }
    await chmod(at, 0o755);
  }
}
