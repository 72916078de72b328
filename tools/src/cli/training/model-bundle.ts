/**
 * What `flip model create` reads from disk before it sends anything: the researcher's files, the config
 * and the initial weights, each checked here so a mistake is named with its file instead of coming back
 * from the hub after an upload of up to 96 MiB.
 */
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync, type Stats } from "node:fs";
import * as path from "node:path";
import { UsageError } from "../command.js";

/** The hub's limits (flip.hub.v1.ModelService.CreateModel), checked before the upload. */
export const MAX_BUNDLE_BYTES = 32 * 1024 * 1024;
export const MAX_BUNDLE_FILES = 1000;
export const MAX_CONFIG_BYTES = 64 * 1024;
export const MAX_WEIGHTS_BYTES = 64 * 1024 * 1024;
const MAX_PATH_CHARS = 255;
/** safetensors headers are JSON describing tensors; anything this large is not one. */
const MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024;

export interface BundleFile {
  /** Relative to the files directory, "/"-separated. */
  path: string;
  content: Uint8Array;
}

export interface Bundle {
  files: BundleFile[];
  totalBytes: number;
  /** Entries left out because their name starts with "." or is __pycache__ (relative paths). */
  skipped: string[];
}

/** Names left out of a bundle: version control, editor and tool state, caches, secrets such as .env. */
export const isSkippedName = (name: string) => name.startsWith(".") || name === "__pycache__";

export const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

/**
 * Every regular file under `dir`, sorted by path, so the same directory always makes the same bundle.
 * Hidden entries (".git", ".env", ".venv", …) and __pycache__ are skipped. A symbolic link is followed
 * only when it resolves inside `dir`; one that points outside, dangles, or names something other than a
 * file or directory is refused. The total is checked against the hub's 32 MiB before anything is read.
 */
export function readBundleDir(dir: string): Bundle {
  try {
    return readBundle(dir);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`--files ${dir}: cannot read ${err.path ?? "it"} (${err.code ?? err.message})`);
  }
}

function readBundle(dir: string): Bundle {
  let rootReal: string;
  try {
    rootReal = realpathSync(dir);
  } catch {
    throw new UsageError(`--files ${dir}: no such directory`);
  }
  if (!statSync(rootReal).isDirectory()) throw new UsageError(`--files ${dir}: not a directory`);

  const found: { rel: string; abs: string; size: number }[] = [];
  const skipped: string[] = [];
  const visitedDirs = new Set<string>([rootReal]);
  const refuse = (rel: string, why: string) => new UsageError(`--files ${dir}: ${rel} ${why}`);

  const walk = (absDir: string, relDir: string) => {
    for (const name of readdirSync(absDir).sort()) {
      const rel = relDir ? `${relDir}/${name}` : name;
      if (isSkippedName(name)) {
        skipped.push(rel);
        continue;
      }
      const abs = path.join(absDir, name);
      let st: Stats = lstatSync(abs);
      let real = abs;
      if (st.isSymbolicLink()) {
        try {
          real = realpathSync(abs);
        } catch {
          throw refuse(rel, "is a symbolic link to nothing");
        }
        if (real !== rootReal && !real.startsWith(rootReal + path.sep)) throw refuse(rel, `is a symbolic link that leaves the directory (to ${real}); copy the file in instead`);
        st = statSync(real);
      }
      if (st.isDirectory()) {
        // A link back up the tree would walk forever; each real directory is read once.
        if (visitedDirs.has(real)) continue;
        visitedDirs.add(real);
        walk(real, rel);
      } else if (st.isFile()) {
        if (rel.length > MAX_PATH_CHARS) throw refuse(rel.slice(0, 80) + "…", `has a path longer than ${MAX_PATH_CHARS} characters`);
        if (/[\u0000-\u001f\\]/.test(rel)) throw refuse(JSON.stringify(rel), "has a control character or backslash in its path");
        found.push({ rel, abs: real, size: st.size });
        if (found.length > MAX_BUNDLE_FILES) throw new UsageError(`--files ${dir}: more than ${MAX_BUNDLE_FILES} files; a model holds code and small assets, not data`);
      } else {
        throw refuse(rel, "is not a regular file (a socket, pipe or device); remove it or move the files to another directory");
      }
    }
  };
  walk(rootReal, "");

  const totalBytes = found.reduce((n, f) => n + f.size, 0);
  if (totalBytes > MAX_BUNDLE_BYTES) {
    const largest = [...found].sort((a, b) => b.size - a.size).slice(0, 3).map((f) => `${f.rel} ${mib(f.size)}`);
    throw new UsageError(
      `--files ${dir}: ${mib(totalBytes)} in ${found.length} files, at most ${MAX_BUNDLE_BYTES / 1048576} MiB ` +
        `(largest: ${largest.join(", ")}); put data in the trust's cohort or images, not in the model`,
    );
  }
  if (found.length === 0) throw new UsageError(`--files ${dir}: no files to upload${skipped.length ? ` (hidden entries are skipped: ${skipped.join(", ")})` : ""}`);
  return { files: found.map((f) => ({ path: f.rel, content: readFileSync(f.abs) })), totalBytes, skipped };
}

/** The config file's text, checked to be a JSON object of at most 64 KiB; the hub stores it as written. */
export function readConfigFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`--config ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw new UsageError(`--config ${file}: ${Buffer.byteLength(text)} bytes, at most ${MAX_CONFIG_BYTES / 1024} KiB`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--config ${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`--config ${file}: must hold a JSON object, e.g. {"local_epochs": 2}`);
  return text;
}

/**
 * Why `bytes` is not a safetensors file, or undefined when its header is plausible: an 8-byte
 * little-endian header length, a JSON object of tensors (dtype, shape, data_offsets within the data),
 * optional "__metadata__".
 */
export function safetensorsProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length < 8) return "shorter than the 8-byte header length";
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength < 2n || headerLength > BigInt(Math.min(bytes.length - 8, MAX_SAFETENSORS_HEADER_BYTES))) {
    return `its header length (${headerLength}) does not fit in the file`;
  }
  const dataBytes = bytes.length - 8 - Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + Number(headerLength))));
  } catch {
    return "its header is not JSON";
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) return "its header is not a JSON object";
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const tensor = t as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const offsets = tensor?.data_offsets;
    if (typeof tensor?.dtype !== "string" || !Array.isArray(tensor.shape) || !Array.isArray(offsets) || offsets.length !== 2) {
      return `tensor "${name}" lacks dtype, shape or data_offsets`;
    }
    const [begin, end] = offsets as unknown[];
    if (!Number.isInteger(begin) || !Number.isInteger(end) || (begin as number) < 0 || (end as number) < (begin as number) || (end as number) > dataBytes) {
      return `tensor "${name}" has data_offsets outside the file`;
    }
  }
  return undefined;
}

/** The initial weights: at most 64 MiB, with a plausible safetensors header. */
export function readWeightsFile(file: string): Uint8Array {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new UsageError(`--weights ${file}: not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--weights ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (size > MAX_WEIGHTS_BYTES) throw new UsageError(`--weights ${file}: ${mib(size)}, at most ${MAX_WEIGHTS_BYTES / 1048576} MiB`);
  const bytes = readFileSync(file);
  const problem = safetensorsProblem(bytes);
  if (problem) throw new UsageError(`--weights ${file}: not a safetensors file: ${problem}`);
  return bytes;
}
