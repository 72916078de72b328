import { spawn } from "node:child_process";
import * as path from "node:path";
import { SERVICE_NODE_FLAGS } from "@flip/shared/process/service-node-flags.js";

const repoRoot = path.resolve(import.meta.dirname, "../../..");

/**
 * Runs a service entry point (relative to the repository root) in the foreground on this Node, with
 * telemetry preloaded, forwarding SIGINT/SIGTERM so the service shuts down gracefully; resolves with its
 * exit code.
 */
export async function runServiceInForeground(entry: string, env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, "--import", "tsx", "--import", "@flip/shared/telemetry/register.ts", path.join(repoRoot, entry)], {
    stdio: "inherit",
    env,
    cwd: process.cwd(),
  });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  return await new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? 1)));
}
