/**
 * `npm run images -- [--torch] [--rebuild] [--json]`: makes the reference workload images offline
 * (flip/train-numpy:1, and flip/train-torch:1 with --torch) in the Docker engine the platform uses.
 * `npm run images -- deploy [--rebuild] [--json]`: makes the images of the compose stacks in deploy/
 * (FLIP's services, Orthanc, and stand-ins for PostgreSQL and Prometheus) the same way.
 * Progress goes to stderr; --json prints one JSON object per image on stdout.
 */
import { parseArgs } from "node:util";
import { ensureDockerEngine } from "@flip/shared/docker/engine.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { ensureDeployImages, OFFLINE_COMPOSE_ENV } from "./deploy-images.js";
import { ensureWorkloadImages, type ImageProgress, type WorkloadName } from "./ensure-images.js";

const USAGE = "usage: npm run images -- [--torch] [--rebuild] [--json]\n       npm run images -- deploy [--rebuild] [--json]\n";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    torch: { type: "boolean", default: false },
    rebuild: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
const deploy = positionals[0] === "deploy";
if (values.help || positionals.length > 1 || (positionals.length === 1 && !deploy) || (deploy && values.torch)) {
  process.stderr.write(USAGE);
  process.exit(values.help ? 0 : 2);
}

const log = createLogger({ service: "images", level: process.env.FLIP_LOG_LEVEL ?? "warn", destination: process.stderr });
const names: WorkloadName[] = values.torch ? ["train-numpy", "train-torch"] : ["train-numpy"];

function showProgress(p: ImageProgress): void {
  const time = p.seconds > 0 || p.done ? ` ${p.seconds.toFixed(p.done ? 1 : 0)} s` : "";
  process.stderr.write(`${p.message}${p.done ? ": done in" : "…"}${time}\n`);
}

const engine = await ensureDockerEngine({ log });
try {
  const options = { log, progress: showProgress, rebuild: values.rebuild };
  const images = deploy ? await ensureDeployImages(engine, options) : await ensureWorkloadImages(engine, { ...options, names });
  for (const image of images) {
    if (values.json) process.stdout.write(`${JSON.stringify(image)}\n`);
    else {
      const how = { engine: "already in the engine", cache: "loaded from the cache", built: "built" }[image.source];
      process.stderr.write(`${image.tag}: ${how} (${(image.sizeBytes / 1e6).toFixed(0)} MB, ${image.seconds.toFixed(1)} s)\n`);
    }
  }
  if (deploy && !values.json) {
    const env = Object.entries(OFFLINE_COMPOSE_ENV).map(([k, v]) => `${k}=${v}`).join("\n  ");
    process.stderr.write(`the compose stacks use the stand-ins with these lines in their .env:\n  ${env}\n`);
  }
} catch (err) {
  process.stderr.write(`images: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
if (engine.started && !values.json) {
  // Left running: tests, the demo and gateways reuse it (and stopping it could cut off one that already does).
  process.stderr.write(`started a private Docker engine at ${engine.host}; it keeps running\n`);
}
