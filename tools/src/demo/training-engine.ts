import { spawnSync } from "node:child_process";
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
  installDebianTools(opts);
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

const onPath = (binary: string) => spawnSync("sh", ["-c", `command -v ${binary}`], { stdio: "ignore" }).status === 0;

/**
 * On a fresh Debian machine, as root: installs Debian's docker.io (the engine) and mmdebstrap (the offline
 * image build) when they are missing, so `npm install && npm start` trains without a manual step.
 * FLIP_NO_APT=1 turns this off; without root or apt-get nothing is installed and the engine check says why.
 */
function installDebianTools(opts: { step: (line: string) => void; out: NodeJS.WritableStream }): void {
  const missing = [
    ["dockerd", "docker.io"],
    ["mmdebstrap", "mmdebstrap"],
  ].filter(([binary]) => !onPath(binary!) && !onPath(`/usr/sbin/${binary}`));
  if (missing.length === 0 || process.env.FLIP_NO_APT === "1" || process.getuid?.() !== 0 || !onPath("apt-get")) return;
  const packages = missing.map(([, pkg]) => pkg!);
  opts.step(`installing ${packages.join(" and ")} with apt-get for training (FLIP_NO_APT=1 skips this)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync("apt-get", ["update", "-qq"], { stdio: ["ignore", "ignore", "inherit"], env });
  const install = update.status === 0 ? spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], { stdio: ["ignore", "ignore", "inherit"], env }) : update;
  if (install.status !== 0) opts.out.write(`  (apt-get could not install ${packages.join(", ")}; training may be skipped)\n`);
}
