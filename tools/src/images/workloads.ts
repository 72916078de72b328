import { createHash } from "node:crypto";
import * as path from "node:path";
import { hashFiles, listFiles, sha256 } from "./context-files.js";

/** The reference workload images, as tests, the demo and a model's `image` name them. */
export const WORKLOAD_IMAGES = { numpy: "flip/train-numpy:1", torch: "flip/train-torch:1" } as const;

export type WorkloadName = "train-numpy" | "train-torch";

/** A base root filesystem made from Debian packages with mmdebstrap, then `docker import`ed. */
export interface BaseSpec {
  /** `flip/base-<name>:<hash>`. */
  name: string;
  suite: string;
  /** Installed with their dependencies, without recommends. */
  packages: string[];
  /** Unpacked without their dependencies (`dpkg-deb -x`): a package whose dependencies would pull in far too much. */
  unpacked: string[];
  /** mmdebstrap's variant; default `essential` (see MMDEBSTRAP_OPTIONS). */
  variant?: "essential" | "minbase";
}

export interface WorkloadSpec {
  name: WorkloadName;
  tag: string;
  /** The workload's folder in the repository: its Dockerfile and the files it copies. */
  dir: string;
  base: BaseSpec;
}

/** Raise when the way images are made changes in a way the hashed inputs do not show. */
const BUILDER_VERSION = 1;

export const WORKLOADS: Record<WorkloadName, WorkloadSpec> = {
  "train-numpy": {
    name: "train-numpy",
    tag: WORKLOAD_IMAGES.numpy,
    dir: "workloads/train-numpy",
    base: { name: "numpy", suite: "bookworm", packages: ["python3", "python3-numpy"], unpacked: [] },
  },
  "train-torch": {
    name: "train-torch",
    tag: WORKLOAD_IMAGES.torch,
    dir: "workloads/train-torch",
    // Debian's python3-nibabel depends on scipy, which pulls in a compiler: nibabel itself needs only numpy.
    base: { name: "torch", suite: "bookworm", packages: ["python3", "python3-numpy", "python3-torch", "python3-packaging"], unpacked: ["python3-nibabel"] },
  },
};

/** Where the Python SDK lives in the repository; every workload image installs it. */
export const SDK_DIR = "sdk/python/flip_runtime";

/** A hash of everything a base image is made from. */
export function baseHash(base: BaseSpec): string {
  return sha256(JSON.stringify({ v: BUILDER_VERSION, base, options: MMDEBSTRAP_OPTIONS }));
}

/** `flip/base-numpy:<first 16 hex digits of its hash>`. */
export function baseTag(base: BaseSpec): string {
  return `flip/base-${base.name}:${baseHash(base).slice(0, 16)}`;
}

/** The options every base is made with (part of its hash). */
export const MMDEBSTRAP_OPTIONS = [
  "--variant=essential",
  '--aptopt=APT::Install-Recommends "false"',
  "--dpkgopt=force-unsafe-io",
  "--dpkgopt=path-exclude=/usr/share/doc/*",
  "--dpkgopt=path-exclude=/usr/share/man/*",
  "--dpkgopt=path-exclude=/usr/share/info/*",
  "--dpkgopt=path-exclude=/usr/share/locale/*",
];

/** The build context's files (repository-relative, sorted): the workload's files but its README, and the SDK's Python files. */
export async function contextFiles(repoRoot: string, spec: WorkloadSpec): Promise<string[]> {
  const workload = (await listFiles(repoRoot, spec.dir)).filter((f) => path.basename(f) !== "README.md");
  const sdk = (await listFiles(repoRoot, SDK_DIR)).filter((f) => f.endsWith(".py"));
  if (!workload.includes(`${spec.dir}/Dockerfile`)) throw new Error(`${spec.dir}/Dockerfile is missing`);
  return [...workload, ...sdk].sort();
}

/** A hash of everything a workload image is made from: its base and its build context. */
export async function workloadHash(repoRoot: string, spec: WorkloadSpec, files: string[]): Promise<string> {
  const h = createHash("sha256");
  h.update(JSON.stringify({ v: BUILDER_VERSION, base: baseHash(spec.base), tag: spec.tag }));
  await hashFiles(h, repoRoot, files);
  return h.digest("hex");
}
