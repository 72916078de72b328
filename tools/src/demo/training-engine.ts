import { ensureDockerEngine } from "@flip/shared/docker/engine.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { ensureWorkloadImages } from "../images/ensure-images.js";
import type { WorkloadName } from "../images/workloads.js";
import { ensureDebianPackages } from "./debian-packages.js";

export interface DemoTrainingEngine {
  /** DOCKER_HOST form, for the demo trusts' gateways. */
  host: string;
  stop(): Promise<void>;
}

/**
 * The Docker engine the demo's training runs on, with the reference numpy workload image: an engine that
 * runs already, or a private dockerd (root with Debian's docker.io). The first run builds the image from
 * Debian packages (about half a minute, with progress); later runs reuse it. Without an engine the demo
 * says why and skips training.
 */
export async function prepareTrainingEngine(opts: {
  log: Logger;
  step: (line: string) => void;
  out: NodeJS.WritableStream;
  /** Also the torch workload image (for the imaging demo). */
  torch?: boolean;
}): Promise<DemoTrainingEngine | undefined> {
  ensureDebianPackages(
    [
      ["dockerd", "docker.io"],
      ["mmdebstrap", "mmdebstrap"],
    ],
    "training",
    opts,
  );
  let engine;
  try {
    engine = await ensureDockerEngine({ log: opts.log });
  } catch (e) {
    opts.out.write(`  (training skipped: ${e instanceof Error ? e.message : String(e)})\n`);
    return undefined;
  }
  const names: WorkloadName[] = opts.torch ? ["train-numpy", "train-torch"] : ["train-numpy"];
  opts.step(`Docker engine ${engine.host}${engine.started ? " (started for the demo)" : ""}; workload images ${names.map((n) => `flip/${n}:1`).join(", ")}`);
  let lastLine = "";
  const images = await ensureWorkloadImages(engine, {
    names,
    log: opts.log,
    progress: (p) => {
      const line = `  ${p.image}: ${p.message}${p.done ? ` (${p.seconds.toFixed(0)} s)` : ""}`;
      if (line !== lastLine && (p.done || p.step !== "wait")) opts.out.write(`${line}\n`);
      lastLine = line;
    },
  });
  for (const image of images) if (image.source !== "engine") opts.out.write(`  ${image.tag} ready (${image.source}, ${image.seconds.toFixed(0)} s)\n`);
  // A private engine started for the demo is left running for the next run, like a system one.
  return { host: engine.host, stop: async () => undefined };
}
