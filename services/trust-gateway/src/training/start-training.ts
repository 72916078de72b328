import * as path from "node:path";
import type { DataAccessClient } from "@flip/data-access/client.js";
import type { ImagingClient } from "@flip/imaging/client.js";
import { ensureDockerEngine } from "@flip/shared/docker/engine.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { createArtifactClient } from "../artifacts/index.js";
import type { GatewayConfig, TrainingConfig } from "../config.js";
import type { TaskLog } from "../tasks/task-log.js";
import { WorkloadEngine } from "./containers.js";
import { hubArtifactTransfers } from "./transfers.js";
import { TrainingWorkloads } from "./workloads.js";

export interface StartedTraining {
  workloads: TrainingWorkloads;
  /** Stops serving the jobs' sockets (their containers keep running for the next gateway). */
  close(): Promise<void>;
  /**
   * Stops and removes this gateway's running workload containers, for a platform that stops as a whole
   * (npm start's Ctrl-C) rather than a gateway restarting; returns how many ran.
   */
  stopContainers(): Promise<number>;
}

/**
 * Training as a gateway process runs it: the trust's Docker engine (one that already runs: DOCKER_HOST,
 * /var/run/docker.sock, or the private engine under FLIP_DOCKERD_DIR; the gateway never starts one),
 * artifacts through the hub, job workspaces under `<stateDir>/training`, and the reattachment of
 * containers an earlier gateway left running.
 */
export async function startTraining(
  config: Pick<GatewayConfig, "hubUrl" | "trustKey" | "trustCode" | "hubCa" | "stateDir"> & { training: TrainingConfig },
  deps: { log: Logger; taskLog: TaskLog; dataAccess: DataAccessClient | undefined; imaging?: ImagingClient | undefined; env?: NodeJS.ProcessEnv },
): Promise<StartedTraining> {
  const log = deps.log.child({ component: "training" });
  const engine = await ensureDockerEngine({ log, noStart: true, env: deps.env });
  const artifacts = createArtifactClient({ baseUrl: config.hubUrl, apiKey: config.trustKey, nodeOptions: config.hubCa ? { ca: config.hubCa } : undefined });
  const dir = path.join(config.stateDir, "training");
  const containers = new WorkloadEngine(engine.docker, config.trustCode, dir, log);
  const workloads = new TrainingWorkloads({
    engine: containers,
    trustCode: config.trustCode,
    dir,
    policy: config.training.policy,
    transfers: hubArtifactTransfers(artifacts, log),
    dataAccess: deps.dataAccess,
    imaging: deps.imaging,
    taskLog: deps.taskLog,
    log,
  });
  await workloads.start();
  const { policy } = config.training;
  log.info(
    { engine: engine.host, images: policy.allowedImages, maxGpus: policy.maxGpus, memoryMib: policy.memoryMib, cpus: policy.cpus, forwardLogs: policy.forwardLogs },
    "training workloads enabled",
  );
  return {
    workloads,
    async close() {
      await workloads.close();
      artifacts.close();
    },
    async stopContainers() {
      const running = (await containers.managed()).filter((c) => c.running);
      await Promise.all(running.map((c) => containers.stopAndRemove(c.id)));
      return running.length;
    },
  };
}
