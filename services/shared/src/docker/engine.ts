import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import Docker from "dockerode";
import type { Logger } from "../logging/logger.js";

/** A Docker engine the platform can use: one that already ran, or a private dockerd started for this run. */
export interface DockerEngine {
  /** For dockerode and the docker CLI, e.g. unix:///root/.cache/flip/dockerd/docker.sock. */
  host: string;
  docker: Docker;
  /** True when this process started the daemon (and `stop` ends it). */
  started: boolean;
  /** Whether the engine can run GPU containers (the NVIDIA runtime is installed). */
  hasNvidiaRuntime(): Promise<boolean>;
  stop(): Promise<void>;
}

export interface EngineOptions {
  log: Logger;
  /** Where a private daemon keeps its socket, images and containers; default FLIP_DOCKERD_DIR or ~/.cache/flip/dockerd. */
  dir?: string;
  /** Use only an engine that already runs; never start one. */
  noStart?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** A dockerode client for `host` ("unix:///path", "tcp://host:port"), or DOCKER_HOST, or the default socket. */
export function dockerClient(host?: string): Docker {
  if (!host) return new Docker();
  const url = new URL(host);
  if (url.protocol === "unix:") return new Docker({ socketPath: url.pathname });
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: "http" });
}

async function answers(docker: Docker): Promise<boolean> {
  try {
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}

function engineOf(host: string, docker: Docker, started: boolean, stop: () => Promise<void>): DockerEngine {
  return {
    host,
    docker,
    started,
    async hasNvidiaRuntime() {
      const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
      return Object.keys(info.Runtimes ?? {}).includes("nvidia");
    },
    stop,
  };
}

const noop = async () => undefined;

/**
 * A Docker engine to run workloads on: DOCKER_HOST when set, else the system socket when a daemon answers
 * there, else a private `dockerd` (Debian's docker.io) on a socket under `dir`, started now and stopped
 * by `stop()`. A private daemon that an earlier run left running is reused. Starting one needs root and
 * the `dockerd` binary; without them the error says what to install or set.
 */
export async function ensureDockerEngine(opts: EngineOptions): Promise<DockerEngine> {
  const env = opts.env ?? process.env;
  if (env.DOCKER_HOST) {
    const docker = dockerClient(env.DOCKER_HOST);
    if (await answers(docker)) return engineOf(env.DOCKER_HOST, docker, false, noop);
    throw new Error(`DOCKER_HOST=${env.DOCKER_HOST} does not answer; start that engine or unset DOCKER_HOST to use a private one`);
  }
  if (existsSync("/var/run/docker.sock")) {
    const docker = dockerClient("unix:///var/run/docker.sock");
    if (await answers(docker)) return engineOf("unix:///var/run/docker.sock", docker, false, noop);
  }
  const dir = opts.dir ?? env.FLIP_DOCKERD_DIR ?? path.join(os.homedir(), ".cache", "flip", "dockerd");
  const socket = path.join(dir, "docker.sock");
  const host = `unix://${socket}`;
  const docker = dockerClient(host);
  if (await answers(docker)) return engineOf(host, docker, false, noop);
  if (opts.noStart) throw new Error(`no Docker engine answers (DOCKER_HOST unset, /var/run/docker.sock and ${socket} silent)`);
  return await startPrivateDockerd(dir, opts.log);
}

async function startPrivateDockerd(dir: string, log: Logger): Promise<DockerEngine> {
  if (process.getuid?.() !== 0) {
    throw new Error("no Docker engine is running and only root can start one: start Docker (or set DOCKER_HOST), or run as root with Debian's docker.io installed");
  }
  if (!(await onPath("dockerd"))) throw new Error("no Docker engine is running and dockerd is not installed: apt-get install docker.io (or set DOCKER_HOST)");
  await fs.mkdir(dir, { recursive: true });
  const socket = path.join(dir, "docker.sock");
  const pidfile = path.join(dir, "docker.pid");
  await fs.rm(socket, { force: true });
  await fs.rm(pidfile, { force: true });
  const logFile = await fs.open(path.join(dir, "dockerd.log"), "a");
  const args = [
    `--host=unix://${socket}`,
    `--data-root=${path.join(dir, "root")}`,
    `--exec-root=${path.join(dir, "exec")}`,
    `--pidfile=${pidfile}`,
    "--bridge=none",
    "--iptables=false",
    "--ip6tables=false",
    "--ip-masq=false",
  ];
  log.info({ dir }, "starting a private Docker engine (dockerd)");
  const child = spawn("dockerd", args, { stdio: ["ignore", logFile.fd, logFile.fd], detached: true });
  await logFile.close();
  let exited: string | undefined;
  child.on("exit", (code, signal) => (exited = `dockerd exited (${signal ?? code}); see ${path.join(dir, "dockerd.log")}`));
  child.unref();
  const docker = dockerClient(`unix://${socket}`);
  const deadline = Date.now() + 60_000;
  while (!(await answers(docker))) {
    if (exited) throw new Error(exited);
    if (Date.now() > deadline) throw new Error(`dockerd did not answer within 60 s; see ${path.join(dir, "dockerd.log")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async () => {
    if (exited) return;
    child.kill("SIGTERM");
    const until = Date.now() + 20_000;
    while (!exited && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    if (!exited) child.kill("SIGKILL");
  };
  return engineOf(`unix://${socket}`, docker, true, stop);
}

async function onPath(binary: string): Promise<boolean> {
  for (const d of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").concat(["/usr/sbin", "/sbin"])) {
    try {
      await fs.access(path.join(d, binary), fs.constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}
