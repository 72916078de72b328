import { existsSync, realpathSync } from "node:fs";
import { copyFile, cp, mkdtemp, open, readFile, rm, stat } from "node:fs/promises";
import * as path from "node:path";
import type Docker from "dockerode";
import { followDockerStream } from "./docker-stream.js";

/** The pinned Node (the repository's devDependency `node`) and npm, to put in an offline base image. */
export interface NodeFiles {
  /** The real node binary (an ELF file), not npm's link to it. */
  node: string;
  nodeVersion: string;
  nodeBytes: number;
  /** npm's package directory (bin/npm-cli.js, lib/, node_modules/). */
  npm: string;
  npmVersion: string;
}

/** Node or npm is not where the repository's install puts them; the message says what to run. */
export class NodeFilesError extends Error {
  override readonly name = "NodeFilesError";
}

/** The Dockerfile that turns a Debian base and NodeFiles into a stand-in for node:24-bookworm-slim. */
export const NODE_BASE_DOCKERFILE = "deploy/images/offline/node/Dockerfile";

/**
 * Finds the pinned Node binary under `<repoRoot>/node_modules/node` (npm links or copies the real one
 * there) and the npm that runs this script (npm_execpath), else the first npm on PATH.
 */
export async function findNodeFiles(repoRoot: string, env: NodeJS.ProcessEnv): Promise<NodeFiles> {
  const pkg = path.join(repoRoot, "node_modules", "node");
  if (!existsSync(path.join(pkg, "bin", "node"))) throw new NodeFilesError(`no pinned Node at ${pkg}/bin/node: run npm ci in ${repoRoot}`);
  const node = realpathSync(path.join(pkg, "bin", "node"));
  if (!(await isElf(node))) throw new NodeFilesError(`${node} is not a Node binary (an ELF executable): run npm ci in ${repoRoot} again`);
  const nodeVersion = (JSON.parse(await readFile(path.join(pkg, "package.json"), "utf8")) as { version: string }).version;
  const npm = npmDir(env);
  const npmVersion = (JSON.parse(await readFile(path.join(npm, "package.json"), "utf8")) as { version: string }).version;
  return { node, nodeVersion, nodeBytes: (await stat(node)).size, npm, npmVersion };
}

function npmDir(env: NodeJS.ProcessEnv): string {
  const candidates = [env.npm_execpath, ...(env.PATH ?? "").split(path.delimiter).filter(Boolean).map((d) => path.join(d, "npm"))];
  for (const candidate of candidates) {
    if (!candidate || !existsSync(candidate)) continue;
    const cli = realpathSync(candidate);
    if (path.basename(cli) !== "npm-cli.js") continue;
    const dir = path.dirname(path.dirname(cli));
    if (existsSync(path.join(dir, "package.json"))) return dir;
  }
  throw new NodeFilesError("npm's own files were not found (npm_execpath, or an npm on PATH whose real path is …/npm/bin/npm-cli.js): run this through npm run");
}

async function isElf(file: string): Promise<boolean> {
  const handle = await open(file, "r");
  try {
    const { buffer } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    return buffer.toString("latin1") === "\x7fELF";
  } finally {
    await handle.close();
  }
}

/**
 * Builds `tag` from NODE_BASE_DOCKERFILE on `debianTag`, with a build context of its own (a temporary
 * directory under `workDir`: the Dockerfile, the node binary and npm's directory).
 */
export async function buildNodeBase(
  docker: Docker,
  files: NodeFiles,
  opts: { repoRoot: string; debianTag: string; tag: string; workDir: string; onLine?: (line: string) => void },
): Promise<void> {
  const context = await mkdtemp(path.join(opts.workDir, "node-base-"));
  try {
    await copyFile(path.join(opts.repoRoot, NODE_BASE_DOCKERFILE), path.join(context, "Dockerfile"));
    await copyFile(files.node, path.join(context, "node"));
    await cp(files.npm, path.join(context, "npm"), { recursive: true });
    const stream = await docker.buildImage({ context, src: ["Dockerfile", "node", "npm"] }, { t: opts.tag, buildargs: { BASE_IMAGE: opts.debianTag }, rm: true, forcerm: true, networkmode: "none" });
    await followDockerStream(stream, (o) => {
      if (typeof o.stream === "string" && o.stream.trim()) opts.onLine?.(o.stream.trim());
    });
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}
