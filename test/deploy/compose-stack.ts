/**
 * A compose stack from deploy/ run by Debian's docker-compose on the tests' Docker engine, under a project
 * name of its own, with its variables given explicitly (nothing from the test runner's environment leaks
 * into the compose file).
 */
import { execFile, spawnSync } from "node:child_process";
import { chownSync, chmodSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { repoRoot } from "../support/processes.js";

/** Whether docker-compose is installed (Debian: apt-get install docker-compose). */
export function composeInstalled(): boolean {
  return spawnSync("docker-compose", ["version"], { stdio: "ignore" }).status === 0;
}

export interface ComposeRun {
  code: number;
  stdout: string;
  stderr: string;
}

export class ComposeStack {
  private readonly files: string[];

  constructor(
    /** "hub" or "trust": deploy/<stack>/compose.yaml, and any overrides beside it (e.g. compose.metrics.yaml). */
    stack: "hub" | "trust",
    readonly project: string,
    private readonly opts: { dockerHost: string; profiles: string[]; env: Record<string, string>; overrides?: string[] },
  ) {
    this.files = ["compose.yaml", ...(opts.overrides ?? [])].map((f) => path.join(repoRoot, "deploy", stack, f));
  }

  /** docker-compose <args> for this stack; resolves with its exit code and output, never rejects. */
  run(args: string[], timeoutMs = 240_000): Promise<ComposeRun> {
    const argv = [...this.files.flatMap((f) => ["--file", f]), "--project-name", this.project, ...this.opts.profiles.flatMap((p) => ["--profile", p]), ...args];
    const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", HOME: os.homedir(), DOCKER_HOST: this.opts.dockerHost, ...this.opts.env };
    return new Promise((resolve) => {
      execFile("docker-compose", argv, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr: err && typeof err.code !== "number" ? `${stderr}\n${err.message}` : stderr });
      });
    });
  }

  /** Like run, but rejects with the command and its output when it fails. */
  async ok(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.run(args, timeoutMs);
    if (r.code !== 0) throw new Error(`docker-compose ${args.join(" ")} (project ${this.project}) exited ${r.code}:\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Runs a command in a running service's container, as the operator would (`docker-compose exec`). */
  async exec(service: string, argv: string[]): Promise<string> {
    return await this.ok(["exec", "-T", service, ...argv]);
  }

  /** The id of the service's container (running or not). */
  async containerId(service: string): Promise<string> {
    const id = (await this.ok(["ps", "-q", service])).trim();
    if (!id) throw new Error(`no container for ${service} in project ${this.project}`);
    return id;
  }

  /** The last lines each service logged, for a failing test's report. */
  async logs(lines = 40): Promise<string> {
    const r = await this.run(["logs", "--no-color", `--tail=${lines}`]);
    return r.stdout + r.stderr;
  }

  /** Stops the stack and removes its containers, networks and volumes. */
  async down(): Promise<void> {
    await this.ok(["down", "--volumes", "--remove-orphans", "--timeout", "10"]);
  }
}

/** Writes a secret file as the stacks' READMEs say: readable only by uid 1000, the images' user. */
export function writeSecret(dir: string, name: string, value: string): void {
  const file = path.join(dir, name);
  writeFileSync(file, value, { mode: 0o400 });
  if (process.getuid?.() === 0) chownSync(file, 1000, 1000);
  else chmodSync(file, 0o444);
}

/**
 * The host's own address, which containers reach through their network's route to the host (the hub's
 * published port is there). The engine the tests start has no default bridge, so host-gateway does not work.
 */
export function hostAddress(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLIP_TEST_HOST_IP) return env.FLIP_TEST_HOST_IP;
  for (const [name, addresses] of Object.entries(os.networkInterfaces())) {
    if (/^(br-|docker|veth|lo)/.test(name)) continue;
    const v4 = addresses?.find((a) => a.family === "IPv4" && !a.internal);
    if (v4) return v4.address;
  }
  throw new Error("this machine has no IPv4 address that containers could reach it on: set FLIP_TEST_HOST_IP");
}
