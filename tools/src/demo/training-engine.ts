import { ensureDockerEngine } from "@flip/shared/docker/engine.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { ensureWorkloadImages } from "../images/ensure-images.js";

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
export async function prepareTrainingEngine(opts: { log: Logger; step: (line: string) => void; out: NodeJS.WritableStream }): Promise<DemoTrainingEngine | undefined> {
  let engine;
  try {
    engine = await ensureDockerEngine({ log: opts.log });
  } catch (e) {
    opts.out.write(`  (training skipped: ${e instanceof Error ? e.message : String(e)})\n`);
    return undefined;
  }
  opts.step(`Docker engine ${engine.host}${engine.started ? " (started for the demo)" : ""}; workload image flip/train-numpy:1`);
  let lastLine = "";
  const [image] = await ensureWorkloadImages(engine, {
    names: ["train-numpy"],
    log: opts.log,
    progress: (p) => {
      const line = `  ${p.image}: ${p.message}${p.done ? ` (${p.seconds.toFixed(0)} s)` : ""}`;
      if (line !== lastLine && (p.done || p.step !== "wait")) opts.out.write(`${line}\n`);
      lastLine = line;
    },
  });
  if (image && image.source !== "engine") opts.out.write(`  image ready (${image.source}, ${image.seconds.toFixed(0)} s)\n`);
  // A private engine started for the demo is left running for the next run, like a system one.
  return { host: engine.host, stop: async () => undefined };
}
