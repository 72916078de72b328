import { ConfigError, SettingsReader, type Env } from "@flip/shared/config/settings.js";

/**
 * What the trust's operator allows a training workload, read from the gateway's environment. Every
 * job's container gets these limits whatever the researcher asked for; a job that asks for more is
 * refused with the name of the setting that refused it.
 */
export interface TrainingPolicy {
  /** Images that may run: exact references, or prefixes written with a trailing `*` ("flip/*"). */
  allowedImages: string[];
  /** Most GPUs one job may take at this trust; undefined: as many as the hub assigns. */
  maxGpus: number | undefined;
  /** Memory limit per container (swap is not allowed on top). */
  memoryMib: number;
  /** CPU limit per container; also the workload's OMP_NUM_THREADS (rounded up). */
  cpus: number;
  /** Processes and threads per container. */
  pidsLimit: number;
  /** Size of the container's /tmp (tmpfs, noexec). */
  tmpfsMib: number;
  /** Whether workload output may leave the trust in reports (it is always kept in the trust's task log). */
  forwardLogs: boolean;
  /** Most bytes of log lines forwarded per round; what is beyond is withheld (and counted). */
  forwardLogBytesPerRound: number;
  /** A job's container that no task touched for this long is removed, with its workspace. */
  idleTimeoutMs: number;
  /** Largest update a workload may push. */
  maxUpdateBytes: number;
}

/** The variables the policy is read from, named in refusals so an operator knows what to change. */
export const POLICY_VARS = {
  images: "FLIP_TRAINING_IMAGES",
  maxGpus: "FLIP_TRAINING_MAX_GPUS",
  memory: "FLIP_TRAINING_MEMORY_MIB",
  cpus: "FLIP_TRAINING_CPUS",
  pids: "FLIP_TRAINING_PIDS",
  tmpfs: "FLIP_TRAINING_TMPFS_MIB",
  forwardLogs: "FLIP_TRAINING_FORWARD_LOGS",
  forwardLogBytes: "FLIP_TRAINING_FORWARD_LOG_BYTES",
  idleTimeout: "FLIP_TRAINING_IDLE_TIMEOUT_S",
  maxUpdate: "FLIP_TRAINING_MAX_UPDATE_MIB",
} as const;

/** The platform's reference workload images (built locally by tools/src/images). */
export const DEFAULT_ALLOWED_IMAGES = "flip/*";

/**
 * Reads the policy. Defaults: images `flip/*`, GPUs as assigned, 4096 MiB, 1 CPU, 256 pids, 256 MiB
 * /tmp, logs stay at the trust (64 KiB per round when forwarded), idle containers removed after 2 h,
 * updates up to 4096 MiB.
 */
export function readTrainingPolicy(env: Env): TrainingPolicy {
  const s = new SettingsReader(env);
  const maxGpus = s.optionalString(POLICY_VARS.maxGpus);
  return {
    allowedImages: parseImageAllowList(POLICY_VARS.images, s.string(POLICY_VARS.images, DEFAULT_ALLOWED_IMAGES)),
    maxGpus: maxGpus === undefined ? undefined : s.int(POLICY_VARS.maxGpus, 0, 0, 64),
    memoryMib: s.int(POLICY_VARS.memory, 4096, 64, 4 * 1024 * 1024),
    cpus: parseCpus(POLICY_VARS.cpus, s.string(POLICY_VARS.cpus, "1")),
    pidsLimit: s.int(POLICY_VARS.pids, 256, 16, 65_536),
    tmpfsMib: s.int(POLICY_VARS.tmpfs, 256, 1, 64 * 1024),
    forwardLogs: s.bool(POLICY_VARS.forwardLogs, false),
    forwardLogBytesPerRound: s.int(POLICY_VARS.forwardLogBytes, 64 * 1024, 0, 16 * 1024 * 1024),
    idleTimeoutMs: s.int(POLICY_VARS.idleTimeout, 7_200, 10, 30 * 86_400) * 1000,
    maxUpdateBytes: s.int(POLICY_VARS.maxUpdate, 4096, 1, 1024 * 1024) * 1024 * 1024,
  };
}

/** Parses "flip/*,registry.nhs.uk/ai/train:2": exact references, or prefixes ending in `*`. */
export function parseImageAllowList(name: string, raw: string): string[] {
  const entries = raw
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  for (const e of entries) {
    if (/\s/.test(e) || e.slice(0, -1).includes("*")) throw new ConfigError(name, 'comma-separated image references, or prefixes ending in "*" (e.g. "flip/*,hospital/train:3")', raw);
  }
  return entries;
}

/** Whether `image` matches an entry of the allow-list. */
export function imageAllowed(allowed: readonly string[], image: string): boolean {
  return allowed.some((entry) => (entry.endsWith("*") ? image.startsWith(entry.slice(0, -1)) : image === entry));
}

function parseCpus(name: string, raw: string): number {
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !(n >= 0.1 && n <= 1024)) throw new ConfigError(name, "a number of CPUs from 0.1 to 1024 (e.g. 1 or 2.5)", raw);
  return n;
}
