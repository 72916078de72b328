import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import * as path from "node:path";
import type Docker from "dockerode";
import { bookwormSources, buildBaseImage } from "./base-image.js";
import { followDockerStream } from "./docker-stream.js";
import { ImageCache, imageCacheDir } from "./image-cache.js";
import { inputsLabelOf, inspectImage, LABEL_INPUTS, removeIfSuperseded, stepper, type ImageBuildOptions } from "./image-steps.js";
import { baseHash, baseTag, contextFiles, WORKLOADS, workloadHash, type WorkloadName } from "./workloads.js";

export { WORKLOAD_IMAGES, WORKLOADS, type WorkloadName } from "./workloads.js";
export { LABEL_INPUTS, type ImageProgress } from "./image-steps.js";

export interface EnsureImagesOptions extends ImageBuildOptions {
  names: WorkloadName[];
}

/** A workload image the engine now has. */
export interface WorkloadImage {
  name: WorkloadName;
  tag: string;
  /** The hash of its inputs (also its `flip.inputs` label). */
  inputsHash: string;
  /** Where it came from: already in the engine, loaded from the cache, or made now. */
  source: "engine" | "cache" | "built";
  seconds: number;
  sizeBytes: number;
}

const REPO_ROOT = path.resolve(import.meta.dirname, "..", "..", "..");

/**
 * Makes sure the engine has the named reference workload images, made from this checkout's workloads/
 * and sdk/python: reused when the engine has an image with the same inputs, else loaded from the cache,
 * else built (a base from Debian packages with mmdebstrap and `docker import`, then `docker build` on it)
 * and saved to the cache. Offline but for Debian's archive, and only when a base must be made.
 */
export async function ensureWorkloadImages(engine: { docker: Docker }, opts: EnsureImagesOptions): Promise<WorkloadImage[]> {
  const env = opts.env ?? process.env;
  const cache = new ImageCache(opts.cacheDir ?? imageCacheDir(env));
  const sources = bookwormSources(opts, env);
  const out: WorkloadImage[] = [];
  for (const name of opts.names) {
    out.push(await ensureOne(engine.docker, name, { ...opts, cache, sources, repoRoot: opts.repoRoot ?? REPO_ROOT }));
  }
  return out;
}

interface Context extends EnsureImagesOptions {
  cache: ImageCache;
  sources: string[];
  repoRoot: string;
}

async function ensureOne(docker: Docker, name: WorkloadName, ctx: Context): Promise<WorkloadImage> {
  const spec = WORKLOADS[name];
  if (!spec) throw new Error(`no workload image ${JSON.stringify(name)} (one of ${Object.keys(WORKLOADS).join(", ")})`);
  const started = Date.now();
  const files = await contextFiles(ctx.repoRoot, spec);
  const hash = await workloadHash(ctx.repoRoot, spec, files);
  const done = async (source: WorkloadImage["source"]): Promise<WorkloadImage> => {
    const image = { name, tag: spec.tag, inputsHash: hash, source, seconds: (Date.now() - started) / 1000, sizeBytes: (await inspectImage(docker, spec.tag))?.Size ?? 0 };
    ctx.log.info({ image: spec.tag, source, seconds: image.seconds }, "workload image ready");
    return image;
  };
  if (!ctx.rebuild && (await inputsLabelOf(docker, spec.tag)) === hash) return await done("engine");

  const step = stepper(spec.tag, ctx.progress, ctx.log);
  const onWait = (pid: number) => ctx.progress?.({ image: spec.tag, step: "wait", message: `waiting for another process (pid ${pid}) that is making ${spec.tag}`, seconds: 0, done: false });
  return await ctx.cache.locked(name, onWait, async () => {
    if (!ctx.rebuild && (await inputsLabelOf(docker, spec.tag)) === hash) return await done("engine");
    const bHash = baseHash(spec.base);
    const file = ctx.cache.file(name, bHash, hash);
    if (!ctx.rebuild && existsSync(file)) {
      try {
        await step("load", `loading ${spec.tag} from ${file}`, () => ctx.cache.load(docker, file));
        if ((await inputsLabelOf(docker, spec.tag)) === hash) return await done("cache");
        ctx.log.warn({ file }, "the cached tarball did not hold the expected image; building it");
      } catch (err) {
        ctx.log.warn({ err, file }, "could not load the cached image tarball; building it");
      }
      await rm(file, { force: true });
    }

    const bTag = baseTag(spec.base);
    if (!(await inspectImage(docker, bTag))) {
      for (const older of await ctx.cache.withBase(name, bHash)) {
        try {
          await step("load", `loading base ${bTag} from ${older}`, () => ctx.cache.load(docker, older));
        } catch (err) {
          ctx.log.warn({ err, file: older }, "could not load a cached image tarball");
        }
        if (await inspectImage(docker, bTag)) break;
      }
    }
    if (!(await inspectImage(docker, bTag))) {
      await step("base", `building base image ${bTag} from Debian packages (mmdebstrap)`, () =>
        buildBaseImage(docker, spec.base, bTag, { workDir: path.join(ctx.cache.dir, "tmp"), sources: ctx.sources, onLine: (line) => ctx.log.debug({ image: bTag }, line) }),
      );
    }

    const previous = (await inspectImage(docker, spec.tag))?.Id;
    await step("build", `building ${spec.tag} on ${bTag}`, async () => {
      const stream = await docker.buildImage(
        { context: ctx.repoRoot, src: files },
        { t: spec.tag, dockerfile: `${spec.dir}/Dockerfile`, buildargs: { BASE: bTag }, labels: { [LABEL_INPUTS]: hash }, rm: true, forcerm: true, networkmode: "none" },
      );
      await followDockerStream(stream, (o) => {
        if (typeof o.stream === "string" && o.stream.trim()) ctx.log.debug({ image: spec.tag }, o.stream.trim());
      });
    });
    if ((await inputsLabelOf(docker, spec.tag)) !== hash) throw new Error(`the build of ${spec.tag} finished but the engine has no image with its inputs' label`);
    await removeIfSuperseded(docker, previous, spec.tag);
    const size = await step("save", `saving ${spec.tag} to ${file}`, () => ctx.cache.save(docker, [spec.tag, bTag], file));
    ctx.log.info({ file, sizeBytes: size }, "saved the workload image to the cache");
    await ctx.cache.prune(name, file);
    return await done("built");
  });
}
