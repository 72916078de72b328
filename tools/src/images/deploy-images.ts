import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import * as path from "node:path";
import type Docker from "dockerode";
import { bookwormSources, buildBaseImage } from "./base-image.js";
import { hashFiles, listFiles, sha256 } from "./context-files.js";
import { followDockerStream } from "./docker-stream.js";
import { ImageCache, imageCacheDir } from "./image-cache.js";
import { inputsLabelOf, inspectImage, LABEL_INPUTS, removeIfSuperseded, stepper, type ImageBuildOptions } from "./image-steps.js";
import { buildNodeBase, findNodeFiles, NODE_BASE_DOCKERFILE, type NodeFiles } from "./node-base.js";
import { baseHash, baseTag, type BaseSpec } from "./workloads.js";

/**
 * The images the compose stacks in deploy/ run, as this offline build tags them. FLIP's own are the
 * compose files' defaults; the stand-ins replace public images no registry can give here, and are named
 * so that nobody mistakes them for those (compose takes them from FLIP_POSTGRES_IMAGE, FLIP_PROMETHEUS_IMAGE).
 */
export const DEPLOY_IMAGES = {
  hub: "flip/hub:0.1.0",
  gateway: "flip/trust-gateway:0.1.0",
  dataAccess: "flip/data-access:0.1.0",
  imaging: "flip/imaging:0.1.0",
  orthanc: "flip/orthanc:0.1.0",
  postgres: "flip-offline/postgres:15",
  prometheus: "flip-offline/prometheus:2.42",
} as const;

export type DeployImageName = keyof typeof DEPLOY_IMAGES;

/** The compose variables that point the stacks at the stand-ins. */
export const OFFLINE_COMPOSE_ENV: Readonly<Record<string, string>> = {
  FLIP_POSTGRES_IMAGE: DEPLOY_IMAGES.postgres,
  FLIP_PROMETHEUS_IMAGE: DEPLOY_IMAGES.prometheus,
};

/** Raise when the way these images are made changes in a way the hashed inputs do not show. */
const BUILDER_VERSION = 1;

/** Debian bookworm as close to debian:bookworm-slim as mmdebstrap makes it (minbase: apt, passwd, ...). */
const DEBIAN_BASE: BaseSpec = { name: "debian", suite: "bookworm", packages: ["ca-certificates"], unpacked: [], variant: "minbase" };

interface ImageSpec {
  name: DeployImageName;
  dockerfile: string;
  target?: string;
}

/**
 * Images built together on one base, cached in one tarball with it: FLIP's services on the Node base,
 * Orthanc and the stand-ins on the Debian base.
 */
interface ImageGroup {
  name: "deploy-services" | "deploy-debian";
  base: "node" | "debian";
  /** Whether its builds run npm ci (and so may need NPM_EXTRA_CA_CERTS). */
  npm: boolean;
  images: ImageSpec[];
  /** The build context: repository-relative files. */
  files(repoRoot: string): Promise<string[]>;
}

const SERVICES_DOCKERFILE = "deploy/images/Dockerfile";

const GROUPS: ImageGroup[] = [
  {
    name: "deploy-services",
    base: "node",
    npm: true,
    images: [
      { name: "hub", dockerfile: SERVICES_DOCKERFILE, target: "hub" },
      { name: "gateway", dockerfile: SERVICES_DOCKERFILE, target: "gateway" },
      { name: "dataAccess", dockerfile: SERVICES_DOCKERFILE, target: "data-access" },
      { name: "imaging", dockerfile: SERVICES_DOCKERFILE, target: "imaging" },
    ],
    files: serviceContextFiles,
  },
  {
    name: "deploy-debian",
    base: "debian",
    npm: false,
    images: [
      { name: "orthanc", dockerfile: "deploy/images/orthanc/Dockerfile" },
      { name: "postgres", dockerfile: "deploy/images/offline/postgres/Dockerfile" },
      { name: "prometheus", dockerfile: "deploy/images/offline/prometheus/Dockerfile" },
    ],
    files: async (repoRoot) => (await Promise.all(["deploy/images/orthanc", "deploy/images/offline/postgres", "deploy/images/offline/prometheus"].map((d) => listFiles(repoRoot, d)))).flat().sort(),
  },
];

/** What the service images copy from the repository root. */
const SERVICE_CONTEXT = ["package.json", "package-lock.json", "gen", "console", "services", "tools/package.json", "tools/src/cli", "tools/src/omop", SERVICES_DOCKERFILE, "deploy/images/bin"];

/**
 * The service images' build context, without what .dockerignore keeps out of it (tests, their fixtures,
 * node_modules): those files cannot change an image, so they must not change its hash either.
 */
async function serviceContextFiles(repoRoot: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of SERVICE_CONTEXT) {
    files.push(...((await stat(path.join(repoRoot, entry))).isDirectory() ? await listFiles(repoRoot, entry) : [entry]));
  }
  const ignored = (f: string) =>
    f.endsWith(".test.ts") || f.startsWith("console/dist/") || f === "console/.build.lock" || f.split("/").some((part) => part === "node_modules" || part === "fixtures");
  return files.filter((f) => !ignored(f)).sort();
}

/** An image the engine now has. */
export interface DeployImage {
  name: DeployImageName;
  tag: string;
  /** The hash of its group's inputs (its `flip.inputs` label). */
  inputsHash: string;
  source: "engine" | "cache" | "built";
  seconds: number;
  sizeBytes: number;
}

export type EnsureDeployImagesOptions = ImageBuildOptions;

const REPO_ROOT = path.resolve(import.meta.dirname, "..", "..", "..");

interface Context {
  docker: Docker;
  opts: EnsureDeployImagesOptions;
  repoRoot: string;
  cache: ImageCache;
  sources: string[];
  node: NodeFiles;
  debian: { tag: string; hash: string };
  nodeBase: { tag: string; hash: string };
  /** PEM text for NPM_EXTRA_CA_CERTS, or "". */
  extraCaCerts: string;
}

/**
 * Makes sure the engine has every image in DEPLOY_IMAGES, built from deploy/images with no image registry:
 * reused when the engine has them with the same inputs, else loaded from the cache, else built on bases
 * made here (Debian from its packages with mmdebstrap; Node from the repository's pinned binary and npm)
 * and saved to the cache. Building needs Debian's archive and the npm registry (host networking).
 */
export async function ensureDeployImages(engine: { docker: Docker }, opts: EnsureDeployImagesOptions): Promise<DeployImage[]> {
  const env = opts.env ?? process.env;
  const repoRoot = opts.repoRoot ?? REPO_ROOT;
  const node = await findNodeFiles(repoRoot, env);
  const debianHash = baseHash(DEBIAN_BASE);
  const nodeDockerfile = await readFile(path.join(repoRoot, NODE_BASE_DOCKERFILE), "utf8");
  const nodeHash = sha256(JSON.stringify({ v: BUILDER_VERSION, debian: debianHash, node: [node.nodeVersion, node.nodeBytes], npm: node.npmVersion, nodeDockerfile }));
  const ctx: Context = {
    docker: engine.docker,
    opts,
    repoRoot,
    cache: new ImageCache(opts.cacheDir ?? imageCacheDir(env)),
    sources: bookwormSources(opts, env),
    node,
    debian: { tag: baseTag(DEBIAN_BASE), hash: debianHash },
    nodeBase: { tag: `flip/base-node:${nodeHash.slice(0, 16)}`, hash: nodeHash },
    extraCaCerts: await extraCaCertificates(env),
  };
  const out: DeployImage[] = [];
  for (const group of GROUPS) out.push(...(await ensureGroup(ctx, group)));
  return out;
}

/**
 * CA certificates npm must trust inside the build besides the public ones (a TLS-inspecting proxy):
 * the PEM file FLIP_BUILD_CA_CERTS, else the host's local CAs in /usr/local/share/ca-certificates.
 */
async function extraCaCertificates(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.FLIP_BUILD_CA_CERTS) return await readFile(env.FLIP_BUILD_CA_CERTS, "utf8");
  const dir = "/usr/local/share/ca-certificates";
  const names = existsSync(dir) ? (await readdir(dir)).filter((f) => f.endsWith(".crt")).sort() : [];
  return (await Promise.all(names.map((f) => readFile(path.join(dir, f), "utf8")))).join("\n");
}

async function groupHash(ctx: Context, group: ImageGroup, files: string[]): Promise<string> {
  const h = createHash("sha256");
  const base = group.base === "node" ? ctx.nodeBase.hash : ctx.debian.hash;
  h.update(JSON.stringify({ v: BUILDER_VERSION, base, images: group.images.map((i) => [i.name, DEPLOY_IMAGES[i.name], i.dockerfile, i.target]) }));
  await hashFiles(h, ctx.repoRoot, files);
  return h.digest("hex");
}

async function ensureGroup(ctx: Context, group: ImageGroup): Promise<DeployImage[]> {
  const { docker, opts, cache } = ctx;
  const started = Date.now();
  const files = await group.files(ctx.repoRoot);
  const hash = await groupHash(ctx, group, files);
  const tags = group.images.map((i) => DEPLOY_IMAGES[i.name]);
  const allThere = async () => (await Promise.all(tags.map((t) => inputsLabelOf(docker, t)))).every((label) => label === hash);
  const done = async (source: DeployImage["source"]): Promise<DeployImage[]> =>
    await Promise.all(
      group.images.map(async (i) => ({
        name: i.name,
        tag: DEPLOY_IMAGES[i.name],
        inputsHash: hash,
        source,
        seconds: (Date.now() - started) / 1000,
        sizeBytes: (await inspectImage(docker, DEPLOY_IMAGES[i.name]))?.Size ?? 0,
      })),
    );
  if (!opts.rebuild && (await allThere())) return await done("engine");

  const step = stepper(group.name, opts.progress, opts.log);
  const onWait = (pid: number) => opts.progress?.({ image: group.name, step: "wait", message: `waiting for another process (pid ${pid}) that is making ${group.name}`, seconds: 0, done: false });
  return await cache.locked(group.name, onWait, async () => {
    if (!opts.rebuild && (await allThere())) return await done("engine");
    const file = cache.file(group.name, ctx.debian.hash, hash);
    if (!opts.rebuild && existsSync(file)) {
      try {
        await step("load", `loading ${tags.join(", ")} from ${file}`, () => cache.load(docker, file));
        if (await allThere()) return await done("cache");
        opts.log.warn({ file }, "the cached tarball did not hold the expected images; building them");
      } catch (err) {
        opts.log.warn({ err, file }, "could not load the cached image tarball; building the images");
      }
      await rm(file, { force: true });
    }

    await ensureDebianBase(ctx, group, step);
    if (group.base === "node" && !(await inspectImage(docker, ctx.nodeBase.tag))) {
      await step("base", `building base image ${ctx.nodeBase.tag} (Node ${ctx.node.nodeVersion}, npm ${ctx.node.npmVersion}) on ${ctx.debian.tag}`, () =>
        buildNodeBase(docker, ctx.node, { repoRoot: ctx.repoRoot, debianTag: ctx.debian.tag, tag: ctx.nodeBase.tag, workDir: cache.dir, onLine: (line) => opts.log.debug({ image: ctx.nodeBase.tag }, line) }),
      );
    }
    const baseImage = group.base === "node" ? ctx.nodeBase.tag : ctx.debian.tag;
    const buildArgs = { BASE_IMAGE: baseImage, ...(group.npm && ctx.extraCaCerts ? { NPM_EXTRA_CA_CERTS: ctx.extraCaCerts } : {}) };
    for (const image of group.images) await buildImage(ctx, image, { files, buildArgs, hash, step });

    const refs = [...tags, ctx.debian.tag, ...(group.base === "node" ? [ctx.nodeBase.tag] : [])];
    const size = await step("save", `saving ${tags.join(", ")} to ${file}`, () => cache.save(docker, refs, file));
    opts.log.info({ file, sizeBytes: size }, "saved the images to the cache");
    await cache.prune(group.name, file);
    return await done("built");
  });
}

/** The Debian base: in the engine, else in an older tarball of any group made on it, else made with mmdebstrap. */
async function ensureDebianBase(ctx: Context, group: ImageGroup, step: ReturnType<typeof stepper>): Promise<void> {
  const { docker, cache, debian } = ctx;
  if (await inspectImage(docker, debian.tag)) return;
  const older = (await Promise.all(GROUPS.map((g) => cache.withBase(g.name, debian.hash)))).flat();
  // The group's own tarballs first: they may also hold its Node base.
  older.sort((a, b) => Number(!path.basename(a).startsWith(group.name)) - Number(!path.basename(b).startsWith(group.name)));
  for (const file of older) {
    try {
      await step("load", `loading base ${debian.tag} from ${file}`, () => cache.load(docker, file));
    } catch (err) {
      ctx.opts.log.warn({ err, file }, "could not load a cached image tarball");
    }
    if (await inspectImage(docker, debian.tag)) return;
  }
  await step("base", `building base image ${debian.tag} from Debian packages (mmdebstrap)`, () =>
    buildBaseImage(docker, DEBIAN_BASE, debian.tag, { workDir: path.join(cache.dir, "tmp"), sources: ctx.sources, onLine: (line) => ctx.opts.log.debug({ image: debian.tag }, line) }),
  );
}

async function buildImage(ctx: Context, image: ImageSpec, how: { files: string[]; buildArgs: Record<string, string>; hash: string; step: ReturnType<typeof stepper> }): Promise<void> {
  const { docker, opts } = ctx;
  const tag = DEPLOY_IMAGES[image.name];
  const previous = (await inspectImage(docker, tag))?.Id;
  const what = `${image.dockerfile}${image.target ? ` --target ${image.target}` : ""}`;
  await how.step("build", `building ${tag} (${what}) on ${how.buildArgs.BASE_IMAGE}`, async () => {
    const stream = await docker.buildImage(
      { context: ctx.repoRoot, src: how.files },
      {
        t: tag,
        dockerfile: image.dockerfile,
        ...(image.target ? { target: image.target } : {}),
        buildargs: how.buildArgs,
        labels: { [LABEL_INPUTS]: how.hash },
        rm: true,
        forcerm: true,
        // npm ci and apt-get inside the build reach the npm registry and Debian's archive.
        networkmode: "host",
      },
    );
    await followDockerStream(stream, (o) => {
      if (typeof o.stream === "string" && o.stream.trim()) opts.log.debug({ image: tag }, o.stream.trim());
    });
  });
  if ((await inputsLabelOf(docker, tag)) !== how.hash) throw new Error(`the build of ${tag} finished but the engine has no image with its inputs' label`);
  await removeIfSuperseded(docker, previous, tag);
}
