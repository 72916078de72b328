import { createHash } from "node:crypto";
import type Docker from "dockerode";
import * as path from "node:path";
import type { Logger } from "@flip/shared/logging/logger.js";
import { OutputLines } from "./container-output.js";
import type { ContainerExit } from "./job.js";
import type { TrainingPolicy } from "./policy.js";
import { WORKLOAD_GID, WORKLOAD_UID, type JobSettings, type JobWorkspace } from "./workspace.js";

/** Labels on every container the gateway starts: how a restarted gateway finds its jobs' containers. */
export const LABEL_MANAGED = "flip.managed";
export const LABEL_JOB = "flip.job";
export const LABEL_TRUST = "flip.trust";
/** Which gateway (by its workspace directory) started the container: only that one reattaches to or removes it. */
export const LABEL_GATEWAY = "flip.gateway";

/** Where things appear inside the container. */
export const MOUNT_BUNDLE = "/flip/bundle";
export const MOUNT_RUNTIME = "/flip/runtime";
export const MOUNT_SCRATCH = "/flip/scratch";
export const RUNTIME_SOCKET = `${MOUNT_RUNTIME}/runtime.sock`;

/** A container of this trust's jobs, as the engine lists it. */
export interface ManagedContainer {
  id: string;
  name: string;
  jobId: string;
  running: boolean;
}

export interface ContainerPlan {
  trustCode: string;
  /** The starting gateway's label (WorkloadEngine.gateway). */
  gateway: string;
  settings: JobSettings;
  workspace: JobWorkspace;
  token: string;
  policy: TrainingPolicy;
  /** W3C trace context of the round that starts the container: its runtime calls continue that trace. */
  traceContext?: Record<string, string>;
}

/** `flip-<trust>-<first 8 characters of the job id>`. */
export function containerName(trustCode: string, jobId: string): string {
  return `flip-${trustCode}-${jobId.slice(0, 8)}`;
}

/**
 * The container for a job: no network, read-only root, no capabilities, no new privileges, an
 * unprivileged user, the policy's pids, memory (no swap beyond it) and CPU limits, a small noexec /tmp,
 * Docker's init as PID 1 (so SIGTERM stops the workload at once), the bundle read-only, the runtime
 * socket's directory, a scratch directory, the project's images read-only, the GPUs the hub
 * assigned (only those), and the round's trace context as TRACEPARENT (and TRACESTATE).
 */
export function containerOptions(plan: ContainerPlan): Docker.ContainerCreateOptions {
  const { settings, workspace, policy } = plan;
  const threads = Math.max(1, Math.ceil(policy.cpus));
  const env = [
    `FLIP_RUNTIME_SOCKET=${RUNTIME_SOCKET}`,
    `FLIP_RUNTIME_TOKEN=${plan.token}`,
    `FLIP_JOB_ID=${settings.jobId}`,
    `FLIP_SCRATCH_DIR=${MOUNT_SCRATCH}`,
    `HOME=${MOUNT_SCRATCH}`,
    `OMP_NUM_THREADS=${threads}`,
    "PYTHONUNBUFFERED=1",
    "PYTHONDONTWRITEBYTECODE=1",
    `PYTHONPATH=${MOUNT_BUNDLE}`,
    // OpenTelemetry's environment carriers: the SDK sends them back on every runtime call.
    ...Object.entries(plan.traceContext ?? {}).map(([key, value]) => `${key.toUpperCase()}=${value}`),
  ];
  const mounts: Docker.MountSettings[] = [
    { Type: "bind", Source: workspace.bundleDir, Target: MOUNT_BUNDLE, ReadOnly: true },
    { Type: "bind", Source: workspace.runtimeDir, Target: MOUNT_RUNTIME, ReadOnly: true },
    { Type: "bind", Source: workspace.scratchDir, Target: MOUNT_SCRATCH, ReadOnly: false },
  ];
  const hostConfig: Docker.HostConfig = {
    NetworkMode: "none",
    ReadonlyRootfs: true,
    CapDrop: ["ALL"],
    SecurityOpt: ["no-new-privileges"],
    PidsLimit: policy.pidsLimit,
    Memory: policy.memoryMib * 1024 * 1024,
    MemorySwap: policy.memoryMib * 1024 * 1024,
    NanoCpus: Math.round(policy.cpus * 1e9),
    Tmpfs: { "/tmp": `rw,noexec,nosuid,nodev,size=${policy.tmpfsMib}m` },
    Init: true,
    Mounts: mounts,
    // The engine keeps output for `docker logs`; the gateway follows it into the task log.
    LogConfig: { Type: "json-file", Config: { "max-size": "10m", "max-file": "2" } },
  };
  if (settings.gpus > 0) {
    hostConfig.DeviceRequests = [
      settings.gpuIndices.length > 0
        ? { Driver: "nvidia", DeviceIDs: settings.gpuIndices.map(String), Capabilities: [["gpu"]] }
        : { Driver: "nvidia", Count: settings.gpus, Capabilities: [["gpu"]] },
    ];
  }
  return {
    name: containerName(plan.trustCode, settings.jobId),
    Image: settings.image,
    User: `${WORKLOAD_UID}:${WORKLOAD_GID}`,
    Env: env,
    Labels: { [LABEL_MANAGED]: "true", [LABEL_JOB]: settings.jobId, [LABEL_TRUST]: plan.trustCode, [LABEL_GATEWAY]: plan.gateway },
    NetworkDisabled: true,
    HostConfig: hostConfig,
  };
}

/** The engine refused or failed an operation; `statusCode` is the Docker API's HTTP status when it answered. */
export function dockerStatus(e: unknown): number | undefined {
  const status = (e as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

/** The engine's own message for a failed call (e.g. `No such image: …`), without dockerode's prefix. */
export function dockerMessage(e: unknown): string {
  const json = (e as { json?: { message?: unknown } } | undefined)?.json;
  if (json && typeof json.message === "string") return json.message;
  return e instanceof Error ? e.message : String(e);
}

/**
 * The Docker engine as the training side uses it: the containers of this trust's jobs that this gateway
 * (its workspace directory) started. Containers of other gateways on a shared engine (another trust, or
 * another state directory) are never touched: their sockets and workspaces are not this gateway's.
 */
export class WorkloadEngine {
  /** The value of LABEL_GATEWAY on this gateway's containers. */
  readonly gateway: string;

  constructor(
    readonly docker: Docker,
    private readonly trustCode: string,
    /** The gateway's job workspaces (`<stateDir>/training`). */
    workspacesDir: string,
    private readonly log: Logger,
  ) {
    this.gateway = createHash("sha256").update(path.resolve(workspacesDir)).digest("hex").slice(0, 16);
  }

  /** Containers this gateway started (running or not). */
  async managed(): Promise<ManagedContainer[]> {
    const list = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_TRUST}=${this.trustCode}`, `${LABEL_GATEWAY}=${this.gateway}`] },
    });
    return list.map((c) => ({ id: c.Id, name: (c.Names[0] ?? "").replace(/^\//, ""), jobId: c.Labels[LABEL_JOB] ?? "", running: c.State === "running" }));
  }

  /** The job's container, if one exists (a running one first). */
  async find(jobId: string): Promise<ManagedContainer | undefined> {
    const all = (await this.managed()).filter((c) => c.jobId === jobId);
    return all.find((c) => c.running) ?? all[0];
  }

  async imagePresent(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (e) {
      if (dockerStatus(e) === 404) return false;
      throw e;
    }
  }

  async hasNvidiaRuntime(): Promise<boolean> {
    const info = (await this.docker.info()) as { Runtimes?: Record<string, unknown> };
    return Object.keys(info.Runtimes ?? {}).includes("nvidia");
  }

  /**
   * Creates and starts a container. One the engine created but could not start (e.g. its GPU driver is
   * missing) is removed, and the start error thrown.
   */
  async run(options: Docker.ContainerCreateOptions): Promise<string> {
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(options);
    } catch (e) {
      if (dockerStatus(e) !== 409 || !options.name) throw e;
      // The name is taken: a leftover of this job (removed here), or a job whose id starts alike.
      const other = this.docker.getContainer(options.name);
      const labels = ((await other.inspect()) as { Config?: { Labels?: Record<string, string> } }).Config?.Labels ?? {};
      if (labels[LABEL_TRUST] === options.Labels?.[LABEL_TRUST] && labels[LABEL_JOB] === options.Labels?.[LABEL_JOB]) {
        await other.remove({ force: true });
        container = await this.docker.createContainer(options);
      } else {
        container = await this.docker.createContainer({ ...options, name: `flip-${this.trustCode}-${options.Labels?.[LABEL_JOB] ?? ""}` });
      }
    }
    try {
      await container.start();
    } catch (e) {
      await container.remove({ force: true }).catch((err: unknown) => this.log.warn({ err, containerId: container.id }, "could not remove a container that failed to start"));
      throw e;
    }
    return container.id;
  }

  /** Resolves when the container exits (call only after it started: see training-stack.md). */
  async wait(id: string, signal: AbortSignal): Promise<ContainerExit> {
    const container = this.docker.getContainer(id);
    const res = (await container.wait({ abortSignal: signal })) as { StatusCode?: number };
    let oomKilled = false;
    try {
      oomKilled = Boolean(((await container.inspect()) as { State?: { OOMKilled?: boolean } }).State?.OOMKilled);
    } catch (e) {
      if (dockerStatus(e) !== 404) throw e;
    }
    return { code: res.StatusCode ?? -1, oomKilled };
  }

  /**
   * Follows the container's stdout and stderr from `sinceSeconds` (unix time; 0 from the start), calling
   * `onLines` with each batch of complete lines, until it exits or `signal` fires.
   */
  async follow(id: string, sinceSeconds: number, onLines: (lines: string[]) => void, signal: AbortSignal): Promise<void> {
    const stream = await this.docker.getContainer(id).logs({ follow: true, stdout: true, stderr: true, since: sinceSeconds, abortSignal: signal });
    const splitter = new OutputLines();
    await new Promise<void>((resolve) => {
      stream.on("data", (chunk: Buffer) => onLines(splitter.push(chunk)));
      stream.on("end", resolve);
      stream.on("close", resolve);
      stream.on("error", (err: Error) => {
        if (!signal.aborted) this.log.debug({ err: err.message, containerId: id }, "container output stream ended with an error");
        resolve();
      });
    });
    onLines(splitter.end());
  }

  /** Stops (SIGTERM, then SIGKILL after `graceSeconds`) and removes the container; one already gone is fine. */
  async stopAndRemove(id: string, graceSeconds = 2): Promise<void> {
    const container = this.docker.getContainer(id);
    try {
      await container.stop({ t: graceSeconds });
    } catch (e) {
      // 304: already stopped; 404: already gone.
      if (dockerStatus(e) !== 304 && dockerStatus(e) !== 404) throw e;
    }
    try {
      await container.remove({ force: true });
    } catch (e) {
      if (dockerStatus(e) !== 404 && dockerStatus(e) !== 409) throw e;
    }
  }
}
